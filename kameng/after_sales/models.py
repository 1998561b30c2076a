"""After-sales requests (售后申请): a buyer asks for a delivered order's money back, staff agree (refunded through
kameng.payments.refunds) or refuse with a reason, or the buyer withdraws while it waits. kameng.after_sales.services
moves them; the order page and 我的售后 show them."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models

NOTE_MAX_LENGTH = 500
STAFF_REPLY_MAX_LENGTH = 200


class AfterSalesReason(models.TextChoices):
    KEY_INVALID = "key_invalid", "卡密无效"
    KEY_USED = "key_used", "卡密已被使用"
    NOT_CREDITED = "not_credited", "充值未到账"
    OTHER = "other", "其他"


class AfterSalesStatus(models.TextChoices):
    PENDING = "pending", "待处理"
    APPROVED = "approved", "已同意（已退款）"
    REJECTED = "rejected", "已拒绝"
    WITHDRAWN = "withdrawn", "已撤销"


class AfterSalesRequest(models.Model):
    """One buyer's request about one order. At most one per order is pending: `open_order_id` holds the order's id
    while it is, NULL once decided, under a plain unique constraint (MySQL/MariaDB drop conditional ones)."""

    number = models.CharField("售后单号", max_length=32, unique=True)
    order = models.ForeignKey("orders.Order", verbose_name="订单", on_delete=models.PROTECT,
                              related_name="after_sales_requests")
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="买家", on_delete=models.PROTECT,
                              related_name="+")
    reason = models.CharField("售后原因", max_length=20, choices=AfterSalesReason.choices)
    note = models.TextField("补充说明", max_length=NOTE_MAX_LENGTH, blank=True, default="")
    # What the order had left to refund when the buyer asked (staff refund what is left when they agree).
    amount = models.DecimalField("申请退款金额", max_digits=14, decimal_places=2, default=Decimal("0.00"))
    status = models.CharField("状态", max_length=12, choices=AfterSalesStatus.choices,
                              default=AfterSalesStatus.PENDING)
    open_order_id = models.BigIntegerField("处理中的订单", null=True, blank=True, unique=True, editable=False)
    staff_reply = models.CharField("处理说明（买家可见）", max_length=STAFF_REPLY_MAX_LENGTH, blank=True, default="")
    refund = models.ForeignKey("payments.Refund", verbose_name="退款单", null=True, blank=True,
                               on_delete=models.PROTECT, related_name="+")
    # The risk engine's decision at the refund checkpoint when the buyer asked, if it asked staff to look (复核).
    risk_decision = models.ForeignKey("risk.RiskDecision", verbose_name="风控复核", null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="处理人", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField("申请时间", auto_now_add=True)
    decided_at = models.DateTimeField("处理时间", null=True, blank=True)

    class Meta:
        verbose_name = "售后申请"
        verbose_name_plural = "售后申请"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["buyer", "-created_at"], name="after_sales_buyer_recent"),
            models.Index(fields=["status", "id"], name="after_sales_status"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_pending(self) -> bool:
        return self.status == AfterSalesStatus.PENDING
