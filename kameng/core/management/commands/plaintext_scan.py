"""`manage.py plaintext_scan`: is any card secret, phone number, ID number, real name, API secret, PIN or staff
TOTP secret in clear in the raw database or in the logs? Exit status 0 means nothing was found.

The values it looks for: every value the database holds encrypted (each `EncryptedTextField` of every model,
decrypted through the models; JSON ones taken apart into their string leaves), every card secret (decrypted
through the inventory) and every staff TOTP secret (in hex and in the base32 of authenticator apps; a key left in
django-otp's plain `otp_totp` table is found there), plus `--value KIND=VALUE` and `--values-file` (one
`KIND=VALUE` a line) for values a run planted that the database does not keep (a PIN, a mistyped ID number).
Then the raw scan (kameng.core.plaintext_scan): every column of every table in plain SQL, and every `--path` (log
files, or directories such as the demo's var/). The report masks what it found.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kameng.core.fields import EncryptedTextField
from kameng.core.plaintext_scan import (
    KIND_API_SECRET,
    KIND_CARD_SECRET,
    KIND_ID_NUMBER,
    KIND_PHONE,
    KIND_PIN,
    KIND_REAL_NAME,
    KIND_TOTP_SECRET,
    Needle,
    Scanner,
    database_scan,
    paths_scan,
)

ALLOW = "allow"  # `allow=VALUE`: a value printed on purpose (the demo's simulator keys), not looked for
KINDS = {"card": KIND_CARD_SECRET, "phone": KIND_PHONE, "id": KIND_ID_NUMBER, "name": KIND_REAL_NAME,
         "secret": KIND_API_SECRET, "pin": KIND_PIN, "totp": KIND_TOTP_SECRET}
# A PEM's armour lines and base64 of public parts are not secrets; its body lines are looked for one by one.
_PEM_ARMOUR = "-----"
_MIN_LINE = 16
_MOBILE = re.compile(r"1[3-9]\d{9}")
_SECRET_KEY_NAME = re.compile(r"(?i)secret|key|token|pass|pin|private|sign")
_PUBLIC_KEY_NAMES = frozenset({"app_key", "key_id", "public_key", "platform_public_key", "merchant_public_key"})


def _kind_of(field_name: str) -> str:
    name = field_name.lower()
    if "phone" in name:
        return KIND_PHONE
    if "id_number" in name:
        return KIND_ID_NUMBER
    if name == "name" or name.endswith("_name"):
        return KIND_REAL_NAME
    return KIND_API_SECRET


def _leaves(value: Any, key: str = "") -> Iterator[str]:
    """The secret string leaves of a JSON value: those under a key that names a secret, and phone numbers (a
    connector's gateway URL or merchant id is configuration, not a secret)."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _leaves(item, str(name))
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, key)
    elif isinstance(value, str) and ((_SECRET_KEY_NAME.search(key) and key.lower() not in _PUBLIC_KEY_NAMES)
                                     or _MOBILE.fullmatch(value)):
        yield value


def _pieces(value: str) -> Iterator[str]:
    """What of a stored value to look for: the value, its JSON leaves, the lines of a multi-line secret (a PEM)."""
    value = value.strip()
    if not value:
        return
    if value[:1] in "{[":
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            for leaf in _leaves(parsed):
                yield from _pieces(leaf)
            return
    if "\n" in value:
        # The body lines of private keys; certificates and public keys travel with them and are public.
        private = False
        for line in value.splitlines():
            piece = line.strip()
            if piece.startswith(_PEM_ARMOUR):
                private = piece.startswith("-----BEGIN") and "PRIVATE" in piece
            elif private and len(piece) >= _MIN_LINE:
                yield piece
        return
    yield value


def totp_needles() -> list[Needle]:
    """Every staff authenticator key, as stored (hex) and as an authenticator app takes it (base32, no padding):
    the encrypted ones, and any still in django-otp's plain table (which the raw scan then reports)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from kameng.accounts.staff_models import StaffTOTPDevice

    keys = [*StaffTOTPDevice.objects.values_list("key", flat=True), *TOTPDevice.objects.values_list("key", flat=True)]
    needles: list[Needle] = []
    for key in filter(None, keys):
        needles.append(Needle(KIND_TOTP_SECRET, key))
        needles.append(Needle(KIND_TOTP_SECRET, base64.b32encode(bytes.fromhex(key)).decode().rstrip("=")))
    return needles


def stored_needles() -> list[Needle]:
    """Every value the database holds encrypted, decrypted: what must never be found in clear."""
    needles: list[Needle] = totp_needles()  # first, so that a TOTP key is reported as one
    for model in apps.get_models():
        fields = [field for field in model._meta.concrete_fields if isinstance(field, EncryptedTextField)]
        if not fields:
            continue
        for row in model._default_manager.values_list(*(field.name for field in fields)).iterator():
            for field, value in zip(fields, row, strict=True):
                if value:
                    needles.extend(Needle(KIND_PHONE if _MOBILE.fullmatch(piece) else _kind_of(field.name), piece)
                                   for piece in _pieces(str(value)))
    from kameng.inventory.models import CardKey
    from kameng.inventory.services import decrypt_secrets

    tokens = [bytes(token) for token in CardKey.objects.values_list("secret_ciphertext", flat=True).iterator()]
    needles.extend(Needle(KIND_CARD_SECRET, secret) for secret in decrypt_secrets(tokens))
    return needles


def parse_value(text: str) -> Needle:
    kind, sep, value = text.partition("=")
    if kind.strip() == ALLOW and value.strip():
        return Needle(ALLOW, value.strip())
    if not sep or kind.strip() not in KINDS or not value.strip():
        raise CommandError(f"expected KIND=VALUE with KIND one of {', '.join(KINDS)}: {text[:20]}…")
    return Needle(KINDS[kind.strip()], value.strip())


class Command(BaseCommand):
    help = "Scan the raw database and log files for personal data and secrets in clear. Exit status 1 if any."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--value", action="append", default=[], metavar="KIND=VALUE",
                            help=f"a planted value to look for; KIND is one of {', '.join(KINDS)}")
        parser.add_argument("--values-file", type=Path, help="a file of KIND=VALUE lines")
        parser.add_argument("--path", action="append", default=[], type=Path,
                            help="a log file or a directory to scan (repeatable)")
        parser.add_argument("--no-database", action="store_true", help="scan only the paths")
        parser.add_argument("--skip-table", action="append", default=[], help="a table not to scan (repeatable)")
        parser.add_argument("--limit", type=int, default=50, help="findings to print (default 50)")

    def handle(self, *args: Any, **options: Any) -> None:
        needles = stored_needles()
        needles += [parse_value(text) for text in options["value"]]
        if options["values_file"]:
            needles += [parse_value(line) for line in options["values_file"].read_text().splitlines()
                        if line.strip() and not line.startswith("#")]
        allowed = {needle.value for needle in needles if needle.kind == ALLOW}
        scanner = Scanner(needle for needle in needles if needle.kind != ALLOW and needle.value not in allowed)
        findings = [] if options["no_database"] else database_scan(scanner, skip_tables=options["skip_table"])
        findings += paths_scan(scanner, options["path"])
        counts = Counter(needle.kind for needle in needles if needle.kind != ALLOW)
        self.stdout.write("looked for " + ", ".join(f"{count} {kind}(s)" for kind, count in sorted(counts.items()))
                          + " and the shapes of phones, ID numbers and canary card secrets")
        for finding in findings[:options["limit"]]:
            self.stdout.write(str(finding))
        if findings:
            raise CommandError(f"{len(findings)} plaintext finding(s)")
        self.stdout.write(self.style.SUCCESS("no plaintext personal data or secrets found"))
