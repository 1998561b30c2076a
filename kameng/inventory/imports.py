"""Card-key import (批次导入): parse pasted text or a TXT/CSV upload, encrypt, fingerprint, refuse duplicates."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from kameng.core.crypto import keyring
from kameng.inventory.models import SECRET_CONTEXT, CardKey, CardKeyBatch, CardKeyStatus, ImportStatus

MAX_SECRET_LENGTH = 500
CHUNK_SIZE = 5000
FINGERPRINT_CONTEXT = b"inventory.cardkey.fingerprint"


@dataclass
class ParsedLines:
    secrets: list[str] = field(default_factory=list)
    total: int = 0
    invalid: int = 0


def normalise_secret(line: str) -> str:
    """One key per line; surrounding blanks and inner runs of whitespace do not make a key different."""
    return " ".join(line.split())


# A CSV's first row is a header only when every cell is a column name: a key such as "CARD-0001" is not one.
CSV_HEADER_WORDS = frozenset({
    "卡号", "卡密", "密码", "卡密内容", "账号", "帐号", "序号", "编号", "有效期", "面值", "备注",
    "card", "cardno", "card_no", "card no", "cardnumber", "card_number", "card number", "card key", "cardkey",
    "card_key", "number", "no", "secret", "password", "pwd", "pass", "pin", "code", "key", "account", "serial",
    "sn", "expiry", "expires", "expires_at", "note", "remark",
})


def _is_csv_header(cells: list[str]) -> bool:
    return bool(cells) and all(cell.lower() in CSV_HEADER_WORDS for cell in cells)


def parse_lines(text: str, *, is_csv: bool = False) -> ParsedLines:
    """Split an upload into secrets. CSV cells (e.g. 卡号,密码) are joined with a space; a header row is skipped.

    Blank lines and lines starting with # are skipped; every other line counts towards `total`, and one longer
    than MAX_SECRET_LENGTH counts as invalid.
    """
    parsed = ParsedLines()
    text = text.lstrip("\ufeff")
    rows: Iterator[str] = _csv_rows(text) if is_csv else iter(text.splitlines())
    for raw in rows:
        secret = normalise_secret(raw)
        if not secret or secret.startswith("#"):
            continue
        parsed.total += 1
        if len(secret) > MAX_SECRET_LENGTH:
            parsed.invalid += 1
            continue
        parsed.secrets.append(secret)
    return parsed


def _csv_rows(text: str) -> Iterator[str]:
    is_first = True
    for row in csv.reader(io.StringIO(text)):
        cells = [cell.strip() for cell in row if cell.strip()]
        if not cells:
            continue
        if is_first:
            is_first = False
            if _is_csv_header(cells):
                continue
        yield " ".join(cells)


def fingerprint(secret: str) -> bytes:
    return keyring().fingerprint(secret.encode(), context=FINGERPRINT_CONTEXT)


def card_keys_import(*, batch: CardKeyBatch, text: str, is_csv: bool = False) -> CardKeyBatch:
    """Import every new secret of `text` into the batch's SKU, refusing platform-wide duplicates with a count.

    Works in chunks, each its own transaction, saving progress after each one so the admin page can show it.
    """
    parsed = parse_lines(text, is_csv=is_csv)
    batch.total_lines = parsed.total
    batch.invalid_count = parsed.invalid
    batch.processed_lines = parsed.invalid
    batch.status = ImportStatus.RUNNING
    batch.save(update_fields=["total_lines", "invalid_count", "processed_lines", "status"])
    ring = keyring()
    secret_context = SECRET_CONTEXT.encode()
    seen: set[bytes] = set()
    for offset in range(0, len(parsed.secrets), CHUNK_SIZE):
        chunk = parsed.secrets[offset : offset + CHUNK_SIZE]
        fresh: dict[bytes, str] = {}
        for secret in chunk:
            mark = ring.fingerprint(secret.encode(), context=FINGERPRINT_CONTEXT)
            if mark in seen:
                batch.duplicate_count += 1
                continue
            seen.add(mark)
            fresh[mark] = secret
        batch.imported_count += _insert_chunk(batch, fresh, ring.encrypt_many, secret_context)
        batch.processed_lines += len(chunk)
        batch.save(update_fields=["processed_lines", "imported_count", "duplicate_count"])
    batch.status = ImportStatus.DONE
    batch.finished_at = timezone.now()
    batch.pending_payload = None
    batch.save(update_fields=["status", "finished_at", "pending_payload"])
    return batch


def _insert_chunk(batch: CardKeyBatch, fresh: dict[bytes, str],
                  encrypt_many: Callable[..., list[bytes]], secret_context: bytes) -> int:
    already_stored = 0
    for _attempt in range(3):
        for mark, batch_id in _existing_fingerprints(list(fresh)):
            fresh.pop(mark, None)
            # Keys this very batch stored before a worker restart were imported, not refused.
            if batch_id == batch.pk:
                already_stored += 1
            else:
                batch.duplicate_count += 1
        if not fresh:
            return already_stored
        ciphertexts = encrypt_many((secret.encode() for secret in fresh.values()), context=secret_context)
        try:
            _store_rows(batch, list(zip(fresh, ciphertexts, strict=True)))
        except IntegrityError:
            continue  # a concurrent import took some of these fingerprints: count them as duplicates and retry
        return already_stored + len(fresh)
    raise IntegrityError("card-key import kept colliding with a concurrent import")


def _existing_fingerprints(marks: list[bytes]) -> list[tuple[bytes, int | None]]:
    if connection.vendor == "postgresql":
        # One array parameter instead of thousands of placeholders, which psycopg would parse one by one.
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT fingerprint, batch_id FROM {CardKey._meta.db_table} "  # noqa: S608 - our own table name
                           "WHERE fingerprint = ANY(%s)", [marks])
            return [(bytes(mark), batch_id) for mark, batch_id in cursor.fetchall()]
    rows = CardKey.objects.filter(fingerprint__in=marks).values_list("fingerprint", "batch_id")
    return [(bytes(mark), batch_id) for mark, batch_id in rows]


def _store_rows(batch: CardKeyBatch, rows: list[tuple[bytes, bytes]]) -> None:
    """Insert (fingerprint, ciphertext) rows as available keys; IntegrityError if a fingerprint is taken."""
    if connection.vendor == "postgresql":
        _copy_rows(batch, rows)
        return
    with transaction.atomic():
        CardKey.objects.bulk_create(
            [CardKey(sku_id=batch.sku_id, batch_id=batch.pk, secret_ciphertext=token, fingerprint=mark,
                     expires_at=batch.expires_at, supplier_id=batch.supplier_id, cost=batch.cost)
             for mark, token in rows],
            batch_size=1000,
        )


def _copy_rows(batch: CardKeyBatch, rows: list[tuple[bytes, bytes]]) -> None:
    # COPY streams the rows with no per-row SQL to build or parse: the bulk import's hot path on PostgreSQL.
    from psycopg.errors import UniqueViolation

    statement = (f"COPY {CardKey._meta.db_table} (sku_id, batch_id, status, secret_ciphertext, fingerprint, "
                 "expires_at, created_at, supplier_id, cost) FROM STDIN")
    now = timezone.now()
    try:
        with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
            for mark, token in rows:
                copy.write_row((batch.sku_id, batch.pk, CardKeyStatus.AVAILABLE.value, token, mark,
                                batch.expires_at, now, batch.supplier_id, batch.cost))
    except UniqueViolation as error:
        raise IntegrityError(str(error)) from error


def card_key_batch_create(*, sku_id: int, created_by_id: int | None, source_name: str = "",
                          expires_at: datetime | None = None, supplier_id: int | None = None,
                          cost: Decimal | None = None) -> CardKeyBatch:
    """A new batch; with `supplier_id` and `cost`, a supplier's upload whose keys are stored as its own."""
    return CardKeyBatch.objects.create(sku_id=sku_id, created_by_id=created_by_id, source_name=source_name[:200],
                                       expires_at=expires_at, supplier_id=supplier_id, cost=cost)
