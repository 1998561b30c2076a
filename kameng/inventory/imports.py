"""Card-key import (批次导入): parse pasted text or a TXT/CSV upload, encrypt, fingerprint, refuse duplicates.

An import runs in chunks. A thread prepares the next chunks (fingerprint, drop repeats within the input, AES-GCM
encrypt) while the caller's thread writes the current one (`import_store`), so the CPU work overlaps the database's.
Each chunk is one transaction that stores its keys *and* advances the batch's progress (`processed_lines` and the
counts): the progress bar only ever shows what is committed, and a batch whose worker died resumes exactly where its
last chunk ended (`card_keys_import_resume`). The chunk transaction first locks the batch row and checks the
progress it expects, so two workers on one batch (a redelivered task) never both write a chunk: the one that finds
the batch moved on stops.
"""

from __future__ import annotations

import csv
import io
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from kameng.core.crypto import Keyring, keyring
from kameng.core.errors import ApplicationError
from kameng.core.money import money
from kameng.inventory.import_store import KeyDefaults, rows_store
from kameng.inventory.models import SECRET_CONTEXT, CardKeyBatch, ImportStatus

MAX_SECRET_LENGTH = 500
CHUNK_SIZE = 10_000
PREPARED_AHEAD = 2  # chunks the preparing thread may run ahead of the writer
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


# --- preparing chunks (CPU only, no database) -----------------------------------------------------------------


@dataclass(frozen=True)
class PreparedChunk:
    lines: int  # valid input lines this chunk covers
    repeats: int  # lines repeating an earlier line of the same input (refused as duplicates)
    rows: list[tuple[bytes, bytes]]  # (fingerprint, ciphertext) of the new secrets


def _prepared_chunks(secrets: Sequence[str], *, start: int, ring: Keyring) -> Iterator[PreparedChunk]:
    fingerprint_of = ring.fingerprint
    seen: set[bytes] = {fingerprint_of(secret.encode(), context=FINGERPRINT_CONTEXT) for secret in secrets[:start]}
    secret_context = SECRET_CONTEXT.encode()
    for offset in range(start, len(secrets), CHUNK_SIZE):
        chunk = secrets[offset : offset + CHUNK_SIZE]
        marks: list[bytes] = []
        plaintexts: list[bytes] = []
        for secret in chunk:
            plaintext = secret.encode()
            mark = fingerprint_of(plaintext, context=FINGERPRINT_CONTEXT)
            if mark not in seen:
                seen.add(mark)
                marks.append(mark)
                plaintexts.append(plaintext)
        tokens = ring.encrypt_many(plaintexts, context=secret_context)
        yield PreparedChunk(lines=len(chunk), repeats=len(chunk) - len(marks),
                            rows=list(zip(marks, tokens, strict=True)))


class _PreparedAhead:
    """Runs a chunk generator in a thread, at most `PREPARED_AHEAD` chunks ahead of the consumer.

    Hashing and encryption hold the GIL, but the writer spends most of a chunk waiting on the database, which
    releases it: the next chunk is ready by the time the current one is committed.
    """

    def __init__(self, source: Iterator[PreparedChunk]) -> None:
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=PREPARED_AHEAD)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name="card-key-import-prepare",
                                        daemon=True)
        self._thread.start()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.2)
            except queue.Full:
                continue
            return True
        return False

    def _run(self, source: Iterator[PreparedChunk]) -> None:
        try:
            for chunk in source:
                if not self._put(("chunk", chunk)):
                    return
        except BaseException as error:  # handed to the consumer, which raises it
            self._put(("error", error))
            return
        self._put(("end", None))

    def __iter__(self) -> Iterator[PreparedChunk]:
        while True:
            kind, value = self._queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value

    def close(self) -> None:
        self._stopped.set()
        self._thread.join()


# --- writing ------------------------------------------------------------------------------------------------------


class _BatchMovedOnError(Exception):
    """Another worker committed a chunk of this batch first: it carries on, this one stops."""


def _chunk_commit(batch: CardKeyBatch, defaults: KeyDefaults, chunk: PreparedChunk) -> None:
    now = timezone.now()
    with transaction.atomic():
        committed = (CardKeyBatch.objects.select_for_update().filter(pk=batch.pk)
                     .values_list("processed_lines", flat=True).first())
        if committed != batch.processed_lines:
            raise _BatchMovedOnError
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Keys and progress commit together, so a crash can only lose whole chunks, which a resume redoes:
                # no reason to wait for the disk at every chunk (the final status change is a normal commit).
                cursor.execute("SET LOCAL synchronous_commit = off")
        result = rows_store(defaults=defaults, rows=chunk.rows, now=now)
        CardKeyBatch.objects.filter(pk=batch.pk).update(
            processed_lines=batch.processed_lines + chunk.lines,
            imported_count=batch.imported_count + result.imported,
            duplicate_count=batch.duplicate_count + result.duplicates + chunk.repeats,
            progressed_at=now,
        )
    batch.processed_lines += chunk.lines
    batch.imported_count += result.imported
    batch.duplicate_count += result.duplicates + chunk.repeats
    batch.progressed_at = now


def _import_run(batch: CardKeyBatch, secrets: Sequence[str], *, start: int) -> CardKeyBatch:
    ring = keyring()
    defaults = KeyDefaults(sku_id=batch.sku_id, batch_id=batch.pk, expires_at=batch.expires_at,
                           supplier_id=batch.supplier_id, cost=batch.cost)
    source = _prepared_chunks(secrets, start=start, ring=ring)
    ahead = _PreparedAhead(source) if len(secrets) - start > CHUNK_SIZE else None
    try:
        for chunk in ahead if ahead is not None else source:
            _chunk_commit(batch, defaults, chunk)
    except _BatchMovedOnError:
        batch.refresh_from_db()
        return batch
    except Exception as error:
        card_key_batch_fail(batch=batch, error=error)
        raise
    finally:
        if ahead is not None:
            ahead.close()
    batch.status = ImportStatus.DONE
    batch.finished_at = timezone.now()
    batch.pending_payload = None
    batch.save(update_fields=["status", "finished_at", "pending_payload"])
    return batch


def card_key_batch_fail(*, batch: CardKeyBatch, error: BaseException) -> None:
    """Mark the batch failed with the reason. Its committed chunks stay (the counts say how many keys); the stored
    input stays too, so staff can resume it (`card_keys_import_resume`)."""
    message = f"{type(error).__name__}: {error}"[:1000]
    CardKeyBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.FAILED, error=message,
                                                    finished_at=timezone.now())
    batch.refresh_from_db()


# --- the service ----------------------------------------------------------------------------------------------


def _supplier_terms(supplier_id: int | None, cost: Decimal | None) -> Decimal | None:
    if supplier_id is None:
        if cost is not None:
            raise ApplicationError("供货价只用于供货商的卡密：请同时选择供货商", code="cost_without_supplier")
        return None
    supplier_model = CardKeyBatch._meta.get_field("supplier").related_model
    if not supplier_model._default_manager.filter(pk=supplier_id).exists():
        raise ApplicationError("供货商不存在", code="supplier_not_found")
    if cost is None:
        return None
    amount = money(cost)
    if amount < 0:
        raise ApplicationError("供货价不能为负数", code="negative_cost")
    return amount


def card_keys_import(*, batch: CardKeyBatch, text: str, is_csv: bool = False, supplier_id: int | None = None,
                     cost: Decimal | None = None) -> CardKeyBatch:
    """Import every new secret of `text` into the batch's SKU, refusing platform-wide duplicates with a count.

    The counts are added to the batch's (a batch may take several inputs in turn). With `supplier_id` (and its
    `cost`), the batch and every key it stores belong to that supplier.
    """
    if supplier_id is not None or cost is not None:
        batch.cost = _supplier_terms(supplier_id, cost)
        batch.supplier_id = supplier_id
    parsed = parse_lines(text, is_csv=is_csv)
    batch.total_lines += parsed.total
    batch.invalid_count += parsed.invalid
    batch.processed_lines += parsed.invalid
    batch.status = ImportStatus.RUNNING
    batch.save(update_fields=["total_lines", "invalid_count", "processed_lines", "status", "supplier", "cost"])
    return _import_run(batch, parsed.secrets, start=0)


def card_keys_import_resume(*, batch: CardKeyBatch, text: str, is_csv: bool = False) -> CardKeyBatch:
    """Import a batch's stored input from where its last committed chunk ended (all of it for a batch not begun).

    Used by the worker for queued, interrupted and failed batches: the counts committed with the earlier chunks
    stand, and the lines before them are only fingerprinted again, so that a later repeat of one is still refused.
    """
    parsed = parse_lines(text, is_csv=is_csv)
    # Only a batch with no chunk committed starts afresh; the guard keeps a second worker from resetting a batch
    # the first has already begun.
    CardKeyBatch.objects.filter(pk=batch.pk, processed_lines=0).update(
        total_lines=parsed.total, invalid_count=parsed.invalid, processed_lines=parsed.invalid, imported_count=0,
        duplicate_count=0)
    CardKeyBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.RUNNING, error="", finished_at=None)
    batch.refresh_from_db()
    start = min(max(batch.processed_lines - batch.invalid_count, 0), len(parsed.secrets))
    return _import_run(batch, parsed.secrets, start=start)


def card_key_batch_create(*, sku_id: int, created_by_id: int | None, source_name: str = "",
                          expires_at: datetime | None = None, supplier_id: int | None = None,
                          cost: Decimal | None = None) -> CardKeyBatch:
    return CardKeyBatch.objects.create(sku_id=sku_id, created_by_id=created_by_id, source_name=source_name[:200],
                                       expires_at=expires_at, supplier_id=supplier_id,
                                       cost=_supplier_terms(supplier_id, cost))
