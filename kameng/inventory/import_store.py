"""Writing one prepared chunk of card keys (批次导入的落库): PostgreSQL by COPY, other databases by bulk INSERT.

Both paths insert only fingerprints not yet stored anywhere on the platform (any SKU, any supplier) and report how
many rows they stored and how many the database refused as duplicates. They run inside the caller's transaction.

PostgreSQL: the chunk's fingerprints are looked up in the unique index, and the new rows streamed by binary `COPY`
straight into the table, in fingerprint order (no per-row SQL to build or parse). When a concurrent import stored
one of them between the look-up and the COPY, the COPY fails on the unique index and is rolled back to its
savepoint, and the chunk goes the careful way: `COPY` into a temporary table, then `INSERT … SELECT … ORDER BY
fingerprint ON CONFLICT (fingerprint) DO NOTHING`, which refuses exactly the keys taken. Every import inserts in
fingerprint order, so two imports waiting on each other's keys cannot deadlock.

SQLite and MariaDB: look the fingerprints up, bulk-insert the rest, and count a collision with a concurrent
import as a duplicate (then retry the remainder).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

from django.db import IntegrityError, connection, transaction

from kameng.inventory.models import CardKey, CardKeyStatus

STAGE_TABLE = "kameng_card_key_stage"
LOOKUP_SIZE = 900  # under every backend's limit of parameters per statement
INSERT_ATTEMPTS = 3


@dataclass(frozen=True)
class KeyDefaults:
    """What every key of one batch shares."""

    sku_id: int
    batch_id: int
    expires_at: datetime | None
    supplier_id: int | None
    cost: Decimal | None


@dataclass(frozen=True)
class StoreResult:
    imported: int
    duplicates: int


def rows_store(*, defaults: KeyDefaults, rows: Sequence[tuple[bytes, bytes]], now: datetime) -> StoreResult:
    """Store (fingerprint, ciphertext) rows as available keys, skipping fingerprints already on the platform."""
    if not rows:
        return StoreResult(imported=0, duplicates=0)
    if connection.vendor == "postgresql":
        return _store_postgresql(defaults, rows, now)
    return _store_portable(defaults, rows, now)


def _store_postgresql(defaults: KeyDefaults, rows: Sequence[tuple[bytes, bytes]], now: datetime) -> StoreResult:
    """The fingerprints not yet on the platform go straight into the table by COPY; when a concurrent import
    stored one of them in the meantime (the COPY hits the unique index and rolls back to its savepoint), the chunk
    goes through the staging table, whose `ON CONFLICT` refuses exactly the keys taken."""
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3's own cursor: Django's wrapper has no COPY
        stored = _copy_new(raw, defaults, rows, now)
        if stored is None:
            stored = _insert_staged(raw, defaults, rows, now)
    return StoreResult(imported=stored, duplicates=len(rows) - stored)


def _copy_new(raw: Any, defaults: KeyDefaults, rows: Sequence[tuple[bytes, bytes]], now: datetime) -> int | None:
    """COPY the rows whose fingerprint is not stored yet; how many, or None when a concurrent import got one first
    (nothing of this chunk stored then)."""
    from psycopg.errors import UniqueViolation  # only PostgreSQL deployments have psycopg

    taken = _taken_fingerprints(raw, [mark for mark, _ in rows])
    # In fingerprint order, as the staging path inserts: two imports waiting on each other's keys cannot deadlock.
    fresh = sorted((row for row in rows if row[0] not in taken), key=itemgetter(0))
    if not fresh:
        return 0
    # The binary COPY rows are built here: the seven columns every key of the chunk shares are encoded once, so
    # a row costs the Python side what the two columns of the staging path cost.
    head = _FIELD_COUNT.pack(9) + b"".join(_binary_field(raw, value) for value in (
        defaults.sku_id, defaults.batch_id, CardKeyStatus.AVAILABLE.value))
    tail = b"".join(_binary_field(raw, value) for value in (
        defaults.expires_at, now, defaults.supplier_id, defaults.cost))
    length = _LENGTH.pack
    data = b"".join([_BINARY_SIGNATURE, *(b"".join((head, length(len(token)), token, length(len(mark)), mark, tail))
                                          for mark, token in fresh), _BINARY_TRAILER])
    statement = (f"COPY {CardKey._meta.db_table} (sku_id, batch_id, status, secret_ciphertext, fingerprint, "
                 "expires_at, created_at, supplier_id, cost) FROM STDIN (FORMAT BINARY)")
    try:
        # A savepoint: a collision undoes this COPY only.
        with transaction.atomic(), raw.copy(statement) as copy:
            copy.write(data)
    except UniqueViolation:
        return None
    return len(fresh)


# PostgreSQL's binary COPY format: a signature, flags and header extension; per row the number of fields, then
# each field as its length (-1: NULL) and its bytes in the type's binary form; a trailer.
_BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_BINARY_TRAILER = b"\xff\xff"
_FIELD_COUNT = struct.Struct(">h")
_LENGTH = struct.Struct(">i")
_INT8 = struct.Struct(">iq")


def _binary_field(raw: Any, value: object) -> bytes:
    if value is None:
        return _LENGTH.pack(-1)
    if isinstance(value, int):
        return _INT8.pack(8, value)  # bigint columns
    from psycopg.adapt import PyFormat

    dumper = raw.adapters.get_dumper(type(value), PyFormat.BINARY)(type(value), raw).upgrade(value, PyFormat.BINARY)
    data = bytes(dumper.dump(value))
    return _LENGTH.pack(len(data)) + data


def _taken_fingerprints(raw: Any, marks: list[bytes]) -> set[bytes]:
    """The fingerprints among `marks` already stored, on any SKU."""
    import psycopg

    # A join against the unnested array probes the unique index once per fingerprint (`= ANY(array)` of ten
    # thousand values plans as a scan of the whole table once it is large). A cursor of its own on the same
    # connection sends the array in binary: Django's cursor would quote ten thousand values into the SQL text.
    with psycopg.Cursor(raw.connection) as cursor:
        cursor.execute(f"SELECT stored.fingerprint FROM {CardKey._meta.db_table} AS stored "  # noqa: S608 - our own table
                       "JOIN unnest(%s::bytea[]) AS given(fingerprint) ON stored.fingerprint = given.fingerprint",
                       [marks], binary=True)
        return {bytes(mark) for (mark,) in cursor.fetchall()}


def _insert_staged(raw: Any, defaults: KeyDefaults, rows: Sequence[tuple[bytes, bytes]], now: datetime) -> int:
    table = CardKey._meta.db_table
    # Created and dropped per chunk: the import may run inside a caller's transaction (ON COMMIT would come too
    # late), and nothing lingers on a pooled connection.
    raw.execute(f"CREATE TEMPORARY TABLE {STAGE_TABLE} (fingerprint bytea NOT NULL, "
                "secret_ciphertext bytea NOT NULL) ON COMMIT DROP")
    with raw.copy(f"COPY {STAGE_TABLE} (fingerprint, secret_ciphertext) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["bytea", "bytea"])
        write_row = copy.write_row
        for row in rows:
            write_row(row)
    raw.execute(
        f"INSERT INTO {table} (sku_id, batch_id, status, secret_ciphertext, fingerprint, expires_at, "  # noqa: S608 - our own table names
        "created_at, supplier_id, cost) "
        f"SELECT %s, %s, %s, secret_ciphertext, fingerprint, %s, %s, %s, %s FROM {STAGE_TABLE} "
        "ORDER BY fingerprint ON CONFLICT (fingerprint) DO NOTHING",
        [defaults.sku_id, defaults.batch_id, CardKeyStatus.AVAILABLE.value, defaults.expires_at, now,
         defaults.supplier_id, defaults.cost],
    )
    imported: int = raw.rowcount
    raw.execute(f"DROP TABLE {STAGE_TABLE}")
    return imported


def _store_portable(defaults: KeyDefaults, rows: Sequence[tuple[bytes, bytes]], now: datetime) -> StoreResult:
    fresh = dict(rows)
    duplicates = 0
    for _attempt in range(INSERT_ATTEMPTS):
        taken = _stored_fingerprints(list(fresh))
        for mark in taken:
            del fresh[mark]
        duplicates += len(taken)
        if not fresh:
            return StoreResult(imported=0, duplicates=duplicates)
        try:
            with transaction.atomic():
                CardKey.objects.bulk_create(
                    [CardKey(sku_id=defaults.sku_id, batch_id=defaults.batch_id, secret_ciphertext=token,
                             fingerprint=mark, expires_at=defaults.expires_at, supplier_id=defaults.supplier_id,
                             cost=defaults.cost, created_at=now)
                     for mark, token in fresh.items()],
                    batch_size=1000,
                )
        except IntegrityError:
            continue  # a concurrent import stored some of these first: the next look-up counts them as duplicates
        return StoreResult(imported=len(fresh), duplicates=duplicates)
    raise IntegrityError("card-key import kept colliding with a concurrent import")


def _stored_fingerprints(marks: list[bytes]) -> set[bytes]:
    found: set[bytes] = set()
    for offset in range(0, len(marks), LOOKUP_SIZE):
        part = marks[offset : offset + LOOKUP_SIZE]
        found.update(bytes(mark) for mark in
                     CardKey.objects.filter(fingerprint__in=part).values_list("fingerprint", flat=True))
    return found
