"""Import submissions (批次导入): decode an upload, import small inputs at once, hand large ones to the worker.

A large input is kept on its batch only as AES-256-GCM ciphertext (`pending_payload`) until the worker has
imported it; the worker's task takes the batch id and is idempotent: a redelivered message changes nothing once the
batch is finished, and resumes it after its last committed chunk otherwise.

What a crash leaves: every chunk commits its keys together with the batch's progress, so a batch never holds keys
its counts do not show. A worker that dies mid-import leaves the batch `running` with `progressed_at` standing
still; the broker redelivers the task (acks_late) or the sweeper re-sends it after `STALLED_AFTER`, and the import
resumes. An error (database down, a bug) marks the batch `failed` with the reason and keeps its stored input;
staff resume it from the batch page (`card_key_batch_resume`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from kameng.catalog.models import DeliveryKind, Sku
from kameng.core.crypto import decrypt_text, encrypt_text
from kameng.core.errors import ApplicationError, NotFoundError
from kameng.core.tasks import enqueue_after_commit
from kameng.inventory.imports import (
    card_key_batch_create,
    card_key_batch_fail,
    card_keys_import,
    card_keys_import_resume,
    line_count_estimate,
    parse_lines,
)
from kameng.inventory.models import CardKeyBatch, ImportStatus

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
PAYLOAD_CONTEXT = "inventory.batch.payload"
STALLED_AFTER = timedelta(minutes=10)  # far longer than any chunk takes
_CSV_MARK, _TEXT_MARK = "csv", "txt"


def decode_upload(data: bytes) -> str:
    """Text of an uploaded TXT/CSV file: UTF-8 (with or without BOM), UTF-16 with BOM, or GBK (Excel's default)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApplicationError("文件超过 50 MB，请拆分后分批导入", code="upload_too_large")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = ("utf-8-sig", "gbk")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:  # a NUL byte means a binary file that happened to decode
            return text
    raise ApplicationError("无法识别文件编码：请上传 UTF-8 或 GBK 编码的 TXT/CSV 文本文件", code="undecodable_upload")


def card_key_import_submit(*, sku_id: int, created_by_id: int | None, text: str, is_csv: bool = False,
                           source_name: str = "", expires_at: datetime | None = None,
                           supplier_id: int | None = None, cost: Decimal | None = None) -> CardKeyBatch:
    """Start an import into a card-key SKU. Up to `KAMENG_IMPORT_INLINE_LIMIT` lines import now (the returned
    batch is `done`); a larger input is stored encrypted on a `queued` batch and imported by the worker.

    With `supplier_id` (the supplier console, or staff on a supplier's behalf) every key is stored as that
    supplier's, at `cost`."""
    sku = Sku.objects.select_related("product").filter(pk=sku_id).first()
    if sku is None:
        raise NotFoundError("规格不存在", code="sku_not_found")
    if sku.product.delivery_kind != DeliveryKind.CARD_KEY:
        raise ApplicationError("该商品不是卡密发货，不能导入卡密", code="not_card_key_product")
    if len(text.encode()) > MAX_UPLOAD_BYTES:
        raise ApplicationError("内容超过 50 MB，请拆分后分批导入", code="upload_too_large")
    if not text.strip():
        raise ApplicationError("没有可导入的内容：请粘贴卡密（每行一个）或上传 TXT/CSV 文件", code="empty_import")
    if expires_at is not None and expires_at <= timezone.now():
        # Keys past their expiry are never sold: the import would "succeed" with no stock to show for it.
        raise ApplicationError("有效期已过：这批卡密导入后会立即过期、无法出售；请填写以后的日期，或不填有效期",
                               code="import_already_expired")

    lines = line_count_estimate(text)
    if lines <= settings.KAMENG_IMPORT_INLINE_LIMIT:
        if parse_lines(text, is_csv=is_csv).total == 0:
            raise ApplicationError("没有可导入的卡密：内容只有空行、注释或表头", code="empty_import")
        batch = card_key_batch_create(sku_id=sku.pk, created_by_id=created_by_id, source_name=source_name,
                                      expires_at=expires_at, supplier_id=supplier_id, cost=cost)
        return card_keys_import(batch=batch, text=text, is_csv=is_csv)

    from kameng.inventory.tasks import import_card_key_batch

    payload = (_CSV_MARK if is_csv else _TEXT_MARK) + "\n" + text
    with transaction.atomic():
        batch = card_key_batch_create(sku_id=sku.pk, created_by_id=created_by_id, source_name=source_name,
                                      expires_at=expires_at, supplier_id=supplier_id, cost=cost)
        batch.pending_payload = encrypt_text(payload, context=PAYLOAD_CONTEXT)
        batch.total_lines = lines  # an estimate until the worker has parsed the payload
        batch.save(update_fields=["pending_payload", "total_lines"])
        enqueue_after_commit(import_card_key_batch, batch.pk)
    return batch


def card_key_batch_run(*, batch_id: int) -> CardKeyBatch | None:
    """Import a batch's stored input (the worker's side): from the start for a queued batch, after its last
    committed chunk for an interrupted or failed one. A finished batch is left as it is."""
    batch = CardKeyBatch.objects.filter(pk=batch_id).first()
    if batch is None or batch.status == ImportStatus.DONE or batch.pending_payload is None:
        return batch
    try:
        kind, _, text = decrypt_text(bytes(batch.pending_payload), context=PAYLOAD_CONTEXT).partition("\n")
    except Exception as error:
        card_key_batch_fail(batch=batch, error=error)
        raise
    # card_keys_import_resume marks the batch failed itself on an error, keeping what its chunks committed.
    return card_keys_import_resume(batch=batch, text=text, is_csv=kind == _CSV_MARK)


def card_key_batch_resume(*, batch_id: int) -> CardKeyBatch:
    """Staff's "继续导入" for a failed batch: queue it for the worker, which carries on after its last chunk."""
    from kameng.inventory.tasks import import_card_key_batch

    with transaction.atomic():
        batch = CardKeyBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None:
            raise NotFoundError("导入批次不存在", code="batch_not_found")
        if batch.status != ImportStatus.FAILED or batch.pending_payload is None:
            raise ApplicationError("只有失败且保留了导入内容的批次可以继续导入", code="batch_not_resumable")
        batch.status = ImportStatus.QUEUED
        batch.error = ""
        batch.finished_at = None
        batch.save(update_fields=["status", "error", "finished_at"])
        enqueue_after_commit(import_card_key_batch, batch.pk)
    return batch


def card_key_batches_redrive(*, older_than_seconds: int = 120) -> int:
    """Re-send imports still queued after a while (the broker lost the message, or no worker was up), and
    imports whose worker died: `running` with no chunk committed for `STALLED_AFTER`.

    Running a batch twice at once is harmless: each chunk checks the progress it expects under the batch's row
    lock, so the second worker stops at its first chunk. Failed batches wait for staff (the error may recur).
    """
    now = timezone.now()
    stale = list(
        CardKeyBatch.objects.filter(pending_payload__isnull=False)
        .filter(Q(status=ImportStatus.QUEUED, created_at__lte=now - timedelta(seconds=older_than_seconds))
                | Q(status=ImportStatus.RUNNING, progressed_at__lte=now - STALLED_AFTER)
                | Q(status=ImportStatus.RUNNING, progressed_at__isnull=True, created_at__lte=now - STALLED_AFTER))
        .values_list("pk", flat=True)[:50]
    )
    from kameng.inventory.tasks import import_card_key_batch

    for batch_id in stale:
        import_card_key_batch.delay(batch_id)
    return len(stale)
