"""Card-key import (批次导入): parse pasted text or a TXT/CSV upload, encrypt, fingerprint, refuse duplicates.

The import runs in chunks, each committed with its record on the batch (`import_pipeline`); a failed or
interrupted batch resumes with the chunks it has not recorded (`card_keys_import_resume`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from kameng.core.crypto import keyring
from kameng.core.errors import ApplicationError
from kameng.core.money import money
from kameng.inventory import import_pipeline
from kameng.inventory.import_pipeline import FINGERPRINT_CONTEXT, BatchMovedOnError, batch_finish, chunks_write
from kameng.inventory.models import CardKeyBatch, ImportStatus
from kameng.inventory.services import card_keys_sold_out_forget

MAX_SECRET_LENGTH = 500


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
    parsed.secrets.extend(secrets_parsed(text, is_csv=is_csv, counts=parsed))
    return parsed


def secrets_parsed(text: str, *, is_csv: bool, counts: ParsedLines) -> Iterator[str]:
    """`parse_lines` one secret at a time, so that the first chunk is stored while later lines are still parsed:
    `counts.total` and `counts.invalid` are exact once the iterator is exhausted (`counts.secrets` stays empty)."""
    text = text.lstrip("\ufeff")
    rows: Iterator[str] = _csv_rows(text) if is_csv else iter(text.splitlines())
    for raw in rows:
        secret = normalise_secret(raw)
        if not secret or secret.startswith("#"):
            continue
        counts.total += 1
        if len(secret) > MAX_SECRET_LENGTH:
            counts.invalid += 1
            continue
        yield secret


def line_count_estimate(text: str) -> int:
    """Lines of an upload, counted without parsing it: at least its valid lines (blank lines, comments and a CSV
    header count too), which the progress bar shows as the total until the import has parsed every line."""
    return text.count("\n") + (0 if text.endswith("\n") else 1)


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


def _import_run(batch: CardKeyBatch, secrets: Iterable[str], *, size: int, skip: frozenset[int],
                expected_lines: int | None = None, counts: ParsedLines | None = None) -> CardKeyBatch:
    """Write the chunks of `secrets`; with `counts` (an input parsed as it is imported), the batch's line counts
    are set from them once every line is through."""
    try:
        chunks_write(batch=batch, secrets=secrets, size=size, skip=skip, expected_lines=expected_lines)
    except BatchMovedOnError:
        _batch_refresh(batch)
        return batch
    except Exception as error:
        card_key_batch_fail(batch=batch, error=error)
        raise
    finally:
        card_keys_sold_out_forget(sku_id=batch.sku_id)  # keys may have been added: sell them at once here
    batch_finish(batch, total_lines=None if counts is None else counts.total,
                 invalid_count=None if counts is None else counts.invalid)
    return batch


def _batch_refresh(batch: CardKeyBatch) -> None:
    """Reload the batch but for its stored input (up to 50 MB of ciphertext nobody here reads again)."""
    batch.refresh_from_db(fields=[field.attname for field in CardKeyBatch._meta.concrete_fields
                                  if field.name != "pending_payload"])


def card_key_batch_fail(*, batch: CardKeyBatch, error: BaseException) -> None:
    """Mark the batch failed with the reason. Its committed chunks stay (the counts say how many keys); the stored
    input stays too, so staff can resume it (`card_keys_import_resume`)."""
    message = f"{type(error).__name__}: {error}"[:1000]
    CardKeyBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.FAILED, error=message,
                                                    finished_at=timezone.now())
    _batch_refresh(batch)


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
    batch.committed_chunks = {}  # chunk numbers count within one input
    batch.save(update_fields=["total_lines", "invalid_count", "processed_lines", "status", "supplier", "cost",
                              "committed_chunks"])
    return _import_run(batch, parsed.secrets, size=import_pipeline.CHUNK_SIZE, skip=frozenset())


def card_keys_import_resume(*, batch: CardKeyBatch, text: str, is_csv: bool = False) -> CardKeyBatch:
    """Import a batch's stored input, but for the chunks it has already recorded (all of it for a batch not begun).

    Used by the worker for queued, interrupted and failed batches: the counts committed with the recorded chunks
    stand, and their lines are only fingerprinted again, so that a later repeat of one is still refused. The
    input is parsed as it is imported: until the last line, the total is the count of lines (`line_count_estimate`)
    and invalid lines are not yet counted; both are exact once the batch is done.
    """
    counts = ParsedLines()
    secrets = secrets_parsed(text, is_csv=is_csv, counts=counts)
    estimate = line_count_estimate(text)
    # Only a batch with no chunk recorded starts afresh; the guard keeps a second worker from resetting a batch
    # the first has already begun.
    CardKeyBatch.objects.filter(pk=batch.pk, processed_lines=0).update(
        total_lines=estimate, invalid_count=0, processed_lines=0, imported_count=0, duplicate_count=0,
        committed_chunks={})
    CardKeyBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.RUNNING, error="", finished_at=None)
    _batch_refresh(batch)
    state = batch.committed_chunks or {}
    size = int(state.get("size") or import_pipeline.CHUNK_SIZE)
    return _import_run(batch, secrets, size=size, skip=frozenset(state.get("done", [])), expected_lines=estimate,
                       counts=counts)


def card_key_batch_create(*, sku_id: int, created_by_id: int | None, source_name: str = "",
                          expires_at: datetime | None = None, supplier_id: int | None = None,
                          cost: Decimal | None = None) -> CardKeyBatch:
    return CardKeyBatch.objects.create(sku_id=sku_id, created_by_id=created_by_id, source_name=source_name[:200],
                                       expires_at=expires_at, supplier_id=supplier_id,
                                       cost=_supplier_terms(supplier_id, cost))
