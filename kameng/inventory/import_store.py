"""Writing one prepared chunk of card keys (批次导入的落库): PostgreSQL by COPY, other databases by bulk INSERT.

Both paths insert only fingerprints not yet stored anywhere on the platform (any SKU, any supplier) and report how
many rows they stored and how many the database refused as duplicates. They run inside the caller's transaction.

PostgreSQL: the chunk is streamed with binary `COPY` into a temporary table, then moved with one
`INSERT … SELECT … ORDER BY fingerprint ON CONFLICT (fingerprint) DO NOTHING`: no per-row SQL to build or parse,
and a key that another import stores at the same moment is simply refused, never an error. Every import inserts
in fingerprint order, so two imports waiting on each other's keys cannot deadlock.

SQLite and MariaDB: look the fingerprints up, bulk-insert the rest, and count a collision with a concurrent
import as a duplicate (then retry the remainder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

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
    table = CardKey._meta.db_table
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3's own cursor: Django's wrapper has no COPY
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
        imported = raw.rowcount
        raw.execute(f"DROP TABLE {STAGE_TABLE}")
    return StoreResult(imported=imported, duplicates=len(rows) - imported)


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
