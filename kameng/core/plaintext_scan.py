"""Looking for personal data and secrets where they must not be in clear: the raw database and the logs.

What it looks for:
- known values (`Needle`): card secrets, phone numbers, ID numbers, real names, API secrets, PINs and staff TOTP
  keys that a run planted or that the database holds encrypted — in their plain form and in the forms a log or a
  queued message writes them (JSON's \\u escapes, URL encoding);
- shapes that are personal data whoever planted them: an 11-digit mainland mobile number standing alone, an
  18-character resident ID number whose check digit is right, and any canary card secret (`CANARY_PREFIX…`).
Masked forms (138****8000, 110***********1234, 张*三) are none of these.

The database is read in raw SQL (never through the models, whose encrypted fields would decrypt): every column
of every table, text, binary and JSON alike; Django's signed sessions are opened and read too. Findings carry a
masked excerpt, so the scan's own report leaks nothing. The management command `plaintext_scan` composes this
with the values the database holds encrypted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from django.db import connections

from kameng.core.masking import mask_secret, mask_text

# Canary card secrets planted by tests and by the demo scan start with this; any such string in clear is a leak.
CANARY_PREFIX = "KMCANARY"

KIND_CARD_SECRET = "card secret"  # noqa: S105 - a label
KIND_PHONE = "phone"
KIND_ID_NUMBER = "ID number"
KIND_REAL_NAME = "real name"
KIND_API_SECRET = "API secret"  # noqa: S105 - a label
KIND_PIN = "PIN"
KIND_TOTP_SECRET = "TOTP secret"  # noqa: S105 - a label

_BEFORE = r"(?<![0-9A-Za-z_.])"
_AFTER = r"(?![0-9A-Za-z_]|\.\d)"
_PHONE = re.compile(_BEFORE + r"1[3-9]\d{9}" + _AFTER)
_ID_NUMBER = re.compile(_BEFORE + r"\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]" + _AFTER)
_CANARY = re.compile(re.escape(CANARY_PREFIX) + r"[0-9A-Za-z-]+")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# Shorter known values than this are looked for only where they stand alone (a 6-digit PIN is in many numbers).
_ALONE_BELOW = 8
_FORM_MAX = 64
_SESSION_TABLE = "django_session"
_FETCH = 500


def id_number_valid(value: str) -> bool:
    """An 18-character resident ID number with the right check digit (GB 11643)."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17].upper()


@dataclass(frozen=True)
class Needle:
    kind: str
    value: str


@dataclass(frozen=True)
class Finding:
    where: str  # "db:<table>.<column> row <pk>" or "<file>:<line>"
    kind: str
    excerpt: str  # masked

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.excerpt}"


def _trie_pattern(words: Iterable[str]) -> str:
    """One regex for many literal strings, shaped as a trie so a text is read once whatever their number; at each
    place the longest of them that matches wins."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        run = ""  # a chain of single children is read in a loop: recursion only where the trie branches
        while len(node) == 1 and "" not in node:
            (char, node), = node.items()
            run += re.escape(char)
        ends = "" in node
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return run
        body = branches[0] if len(branches) == 1 and not ends else "(?:" + "|".join(branches) + ")"
        return run + (f"(?:{body})?" if ends and len(branches) == 1 else body + "?" if ends else body)

    return build(trie)


def _forms(value: str) -> set[str]:
    """How a value appears in text: as is, JSON-escaped (ASCII), URL-encoded."""
    forms = {value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value, safe="")}
    # A long secret (a key in base64) is looked for by its first characters: a leak of them is a leak.
    return {form[:_FORM_MAX] for form in forms if form}


class Scanner:
    def __init__(self, needles: Iterable[Needle], *, patterns: bool = True) -> None:
        self._kinds: dict[str, str] = {}  # form -> kind
        self._short: set[str] = set()  # forms looked for only where they stand alone
        for needle in needles:
            value = needle.value.strip()
            if len(value) < 2:
                continue
            for form in _forms(value):
                self._kinds.setdefault(form, needle.kind)
                if len(value) < _ALONE_BELOW:
                    self._short.add(form)
        # Bytes are read as Latin-1 so the same kind of pattern finds the UTF-8 of each form.
        self._raw = {form.encode().decode("latin-1"): kind for form, kind in self._kinds.items()}
        self._any_raw = re.compile(_trie_pattern(self._raw)) if self._raw else None
        self._any = re.compile(_trie_pattern(self._kinds)) if self._kinds else None
        self._patterns = patterns

    def _known(self, text: str) -> Iterator[tuple[str, int, int]]:
        if self._any is None:
            return
        position = 0
        while match := self._any.search(text, position):
            form = match.group()
            start, end = match.span()
            position = start + 1
            if form in self._short and (re.match(r"[0-9A-Za-z_.]", text[start - 1:start])
                                        or re.match(r"[0-9A-Za-z_]", text[end:end + 1])):
                continue
            yield self._kinds[form], start, end
            position = end

    def text(self, text: str) -> Iterator[tuple[str, str]]:
        """(kind, masked excerpt) for every leak in `text`."""
        found: list[tuple[str, int, int]] = list(self._known(text))
        if self._patterns:
            shaped = [(KIND_PHONE, match) for match in _PHONE.finditer(text)]
            shaped += [(KIND_ID_NUMBER, match) for match in _ID_NUMBER.finditer(text) if id_number_valid(match.group())]
            shaped += [(KIND_CARD_SECRET, match) for match in _CANARY.finditer(text)]
            for kind, match in shaped:  # a known value found already is not reported again for its shape
                if not any(start < match.end() and match.start() < end for _, start, end in found):
                    found.append((kind, match.start(), match.end()))
        spans = sorted((start, end) for _, start, end in found)
        for kind, start, end in found:
            yield kind, _excerpt(text, start, end, spans)

    def binary(self, data: bytes) -> Iterator[tuple[str, str]]:
        """Known values inside bytes (ciphertext never holds them); bytes that are text are scanned as text."""
        try:
            text = data.decode()
        except UnicodeDecodeError:
            if self._any_raw is not None:
                for match in self._any_raw.finditer(data.decode("latin-1")):
                    kind = self._raw[match.group()]
                    yield kind, f"<{len(data)} bytes holding a {kind} at {match.start()}>"
            if CANARY_PREFIX.encode() in data:
                yield KIND_CARD_SECRET, f"<{len(data)} bytes holding a canary>"
            return
        yield from self.text(text)

    def value(self, value: Any) -> Iterator[tuple[str, str]]:
        if value is None or isinstance(value, int | float | bool):
            return
        if isinstance(value, memoryview):
            value = value.tobytes()
        if isinstance(value, bytes | bytearray):
            yield from self.binary(bytes(value))
        elif isinstance(value, str):
            yield from self.text(value)
        elif isinstance(value, dict | list):
            yield from self.text(json.dumps(value, ensure_ascii=False, default=str))


def _excerpt(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> str:
    """The finding in brackets with a little context, every leak in it masked (the finding's and its neighbours')."""
    low, high = max(0, start - 30), min(len(text), end + 30)
    pieces, position = [], low
    for span in spans:
        if span[1] <= position or span[0] >= high:
            continue
        span_start, span_end = max(span[0], position), min(span[1], high)
        pieces.append(mask_text(text[position:span_start]))
        leak = mask_secret(text[span_start:span_end])
        pieces.append(f"[{leak}]" if (span_start, span_end) == (start, end) else leak)
        position = span_end
    pieces.append(mask_text(text[position:high]))
    return "".join(pieces).replace("\n", " ")


def _session_text(value: str) -> str | None:
    """A Django session's decoded content (signed, maybe compressed base64), or None if it is not one."""
    from django.contrib.sessions.backends.db import SessionStore

    try:
        decoded = SessionStore().decode(value)
    except Exception:  # anything unreadable is scanned as it is
        return None
    return json.dumps(decoded, ensure_ascii=False, default=str) if decoded else None


def database_scan(scanner: Scanner, *, using: str = "default", skip_tables: Iterable[str] = ()) -> list[Finding]:
    """Every column of every table, in raw SQL."""
    connection = connections[using]
    skipped = set(skip_tables)
    findings: list[Finding] = []
    with connection.cursor() as cursor:
        tables = [name for name in connection.introspection.table_names(cursor) if name not in skipped]
        for table in sorted(tables):
            columns = [column.name for column in connection.introspection.get_table_description(cursor, table)]
            quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
            cursor.execute(f"SELECT {quoted} FROM {connection.ops.quote_name(table)}")  # noqa: S608 - names from the catalogue
            row_number = 0
            while rows := cursor.fetchmany(_FETCH):
                for row in rows:
                    row_number += 1
                    row_label = f"row {row[0]}" if columns and columns[0] == "id" else f"row #{row_number}"
                    for column, value in zip(columns, row, strict=True):
                        where = f"db:{table}.{column} {row_label}"
                        for kind, excerpt in scanner.value(value):
                            findings.append(Finding(where, kind, excerpt))
                        if table == _SESSION_TABLE and column == "session_data" and isinstance(value, str):
                            content = _session_text(value)
                            if content is not None:
                                for kind, excerpt in scanner.text(content):
                                    findings.append(Finding(where + " (decoded)", kind, excerpt))
    return findings


def file_scan(scanner: Scanner, path: Path) -> list[Finding]:
    """A log (or any file): text line by line; a file that is not UTF-8 text, as bytes (known values only, plus
    whatever its text-looking parts hold)."""
    findings: list[Finding] = []
    data = path.read_bytes()
    try:
        text = data.decode()
    except UnicodeDecodeError:
        for kind, excerpt in scanner.binary(data):
            findings.append(Finding(str(path), kind, excerpt))
        text = data.decode(errors="replace")
        findings.extend(Finding(f"{path}:{number}", kind, excerpt)
                        for number, line in enumerate(text.splitlines(), start=1)
                        for kind, excerpt in scanner.text(line))
        return findings
    for number, line in enumerate(text.splitlines(), start=1):
        findings.extend(Finding(f"{path}:{number}", kind, excerpt) for kind, excerpt in scanner.text(line))
    return findings


def paths_scan(scanner: Scanner, paths: Iterable[Path]) -> list[Finding]:
    """Files, and every file under directories."""
    findings: list[Finding] = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            findings.extend(file_scan(scanner, file))
    return findings
