"""Card-key stock. Secrets exist here only as AES-256-GCM ciphertext plus a keyed fingerprint.

States: available → reserved (an unpaid order holds it) → sold; available/reserved → void (staff withdrew it).
The `(status, order)` pair is the single source of truth for who owns a key: every claim is an UPDATE guarded by
`status = 'available'`, so no key can ever be handed to two orders.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

SECRET_CONTEXT = "inventory.cardkey.secret"  # noqa: S105 - an AEAD context label, not a secret


class CardKeyStatus(models.TextChoices):
    AVAILABLE = "available", "可售"
    RESERVED = "reserved", "已预留"
    SOLD = "sold", "已售出"
    VOID = "void", "已作废"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "排队中"
    RUNNING = "running", "导入中"
    DONE = "done", "已完成"
    FAILED = "failed", "失败"


class CardKeyBatch(models.Model):
    """One import (批次): pasted text or an uploaded TXT/CSV file, with its progress and what was refused."""

    sku = models.ForeignKey("catalog.Sku", verbose_name="规格", on_delete=models.PROTECT, related_name="batches")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="导入人", null=True,
                                   on_delete=models.SET_NULL)
    source_name = models.CharField("来源", max_length=200, blank=True)
    status = models.CharField("状态", max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    expires_at = models.DateTimeField("卡密有效期至", null=True, blank=True)
    total_lines = models.PositiveIntegerField("总行数", default=0)
    processed_lines = models.PositiveIntegerField("已处理行数", default=0)
    imported_count = models.PositiveIntegerField("导入成功", default=0)
    duplicate_count = models.PositiveIntegerField("重复（已拒绝）", default=0)
    invalid_count = models.PositiveIntegerField("无效行", default=0)
    error = models.TextField("错误", blank=True)
    # A supplier's upload (its console, or staff on its behalf): every key of the batch is stored with the supplier
    # and its cost. Both empty: the platform's own stock.
    supplier = models.ForeignKey("suppliers.Supplier", verbose_name="供货商", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="card_key_batches")
    cost = models.DecimalField("供货价", max_digits=12, decimal_places=2, null=True, blank=True)
    # When the last chunk committed: a `running` batch whose worker died stops moving, and the sweeper resumes it.
    progressed_at = models.DateTimeField("最近进度", null=True, blank=True)
    # The chunks of the input already stored, {"size": lines per chunk, "done": [chunk numbers]}: what a resume skips.
    committed_chunks = models.JSONField("已提交分块", default=dict, blank=True, editable=False)
    # The raw upload, encrypted, kept only until the import finishes.
    pending_payload = models.BinaryField("待导入内容（密文）", null=True, editable=False)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    finished_at = models.DateTimeField("完成时间", null=True, blank=True)

    class Meta:
        verbose_name = "导入批次"
        verbose_name_plural = "导入批次"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"批次 #{self.pk}"

    @property
    def progress_percent(self) -> int:
        if not self.total_lines:
            return 100 if self.status == ImportStatus.DONE else 0
        return min(100, self.processed_lines * 100 // self.total_lines)


class CardKey(models.Model):
    sku = models.ForeignKey("catalog.Sku", verbose_name="规格", on_delete=models.PROTECT, related_name="card_keys",
                            db_index=False)
    # No database-level constraint: the import, the only writer of `batch`, holds the batch row locked in every
    # chunk's transaction (`import_pipeline._chunk_commit`), so the batch exists when its keys commit, and batches
    # are never deleted (no code path; read-only in the admin; PROTECT still refuses an ORM delete). The per-row
    # check a constraint costs is a sixth of the import's database work per key (bench/README.md).
    batch = models.ForeignKey(CardKeyBatch, verbose_name="批次", null=True, on_delete=models.PROTECT,
                              related_name="card_keys", db_index=False, db_constraint=False)
    status = models.CharField("状态", max_length=10, choices=CardKeyStatus.choices,
                              default=CardKeyStatus.AVAILABLE)
    secret_ciphertext = models.BinaryField("卡密（密文）")
    fingerprint = models.BinaryField("指纹", max_length=32, unique=True)
    order = models.ForeignKey("orders.Order", verbose_name="订单", null=True, blank=True,
                              on_delete=models.PROTECT, related_name="card_keys", db_index=False)
    expires_at = models.DateTimeField("有效期至", null=True, blank=True)
    # Whose key it is: a supplier's (uploaded in its console, sold at `cost`, its price when the key was taken),
    # or the platform's own stock (both empty).
    supplier = models.ForeignKey("suppliers.Supplier", verbose_name="供货商", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="card_keys", db_index=False)
    cost = models.DecimalField("供货价", max_digits=12, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField("入库时间", auto_now_add=True)
    sold_at = models.DateTimeField("售出时间", null=True, blank=True)

    class Meta:
        verbose_name = "卡密"
        verbose_name_plural = "卡密"
        indexes = [
            # The claim scan walks only available keys of one SKU, in id order from a random start.
            models.Index(fields=["sku", "id"], condition=Q(status="available"), name="inventory_key_available"),
            # A claim on a SKU that suppliers stock walks one source's keys (supplier_id = …): the platform's own
            # keys are not in it, so importing them costs what it did before bidding.
            models.Index(fields=["sku", "supplier", "id"], condition=Q(status="available", supplier__isnull=False),
                         name="inventory_key_by_supplier"),
            models.Index(fields=["sku", "status"], name="inventory_key_sku_status"),
            models.Index(fields=["batch"], name="inventory_key_batch"),
            # An order's keys, looked up by order: only keys in an order are in it, so a key imported (and every key
            # still in stock) costs no entry here.
            models.Index(fields=["order"], condition=Q(order__isnull=False), name="inventory_key_order"),
        ]

    def __str__(self) -> str:
        return f"卡密 #{self.pk}"
