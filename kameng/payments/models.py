"""Payment channels, payments (one per attempt to collect money) and every notification received."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from kameng.core.fields import EncryptedTextField


class ChannelKind(models.TextChoices):
    EPAY_V1 = "epay_v1", "易支付 V1 (MD5)"


class PaymentChannel(models.Model):
    code = models.SlugField("通道标识", max_length=40, unique=True, help_text="出现在异步通知地址里")
    name = models.CharField("显示名称", max_length=60)
    kind = models.CharField("协议", max_length=20, choices=ChannelKind.choices)
    is_enabled = models.BooleanField("启用", default=True)
    gateway_url = models.URLField("网关地址", help_text="例如 https://pay.example.com/（submit.php 所在目录）")
    merchant_id = models.CharField("商户号 (pid)", max_length=64)
    merchant_key = EncryptedTextField("商户密钥", context="payments.paymentchannel.merchant_key")
    pay_type = models.CharField("支付方式 (type)", max_length=20, blank=True, default="alipay",
                                help_text="alipay / wxpay / qqpay；留空则使用网关收银台")
    min_amount = models.DecimalField("单笔最低", max_digits=12, decimal_places=2, default=Decimal("0.01"))
    max_amount = models.DecimalField("单笔最高", max_digits=12, decimal_places=2, default=Decimal("50000.00"))
    sort_order = models.IntegerField("排序", default=0)

    class Meta:
        verbose_name = "支付通道"
        verbose_name_plural = "支付通道"
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.name


class PaymentPurpose(models.TextChoices):
    WALLET_TOPUP = "wallet_topup", "钱包充值"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "待支付"
    SUCCEEDED = "succeeded", "已支付"
    CLOSED = "closed", "已关闭"


class Payment(models.Model):
    number = models.CharField("支付单号 (out_trade_no)", max_length=32, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="用户", on_delete=models.PROTECT,
                             related_name="payments")
    channel = models.ForeignKey(PaymentChannel, verbose_name="通道", on_delete=models.PROTECT,
                                related_name="payments")
    purpose = models.CharField("用途", max_length=20, choices=PaymentPurpose.choices)
    amount = models.DecimalField("金额", max_digits=12, decimal_places=2)
    status = models.CharField("状态", max_length=12, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    gateway_trade_no = models.CharField("通道流水号", max_length=64, blank=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    paid_at = models.DateTimeField("到账时间", null=True, blank=True)

    class Meta:
        verbose_name = "支付单"
        verbose_name_plural = "支付单"
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_payment_amount_positive"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="payments_payment_status_age")]

    def __str__(self) -> str:
        return self.number


class NotificationOutcome(models.TextChoices):
    CREDITED = "credited", "已入账"
    DUPLICATE = "duplicate", "重复通知（已忽略）"
    REJECTED = "rejected", "已拒绝"
    NOT_PAID = "not_paid", "未支付状态"


class PaymentNotification(models.Model):
    """Every asynchronous notification received, kept whatever became of it (the audit trail)."""

    channel = models.ForeignKey(PaymentChannel, verbose_name="通道", null=True, on_delete=models.SET_NULL)
    payment = models.ForeignKey(Payment, verbose_name="支付单", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="notifications")
    outcome = models.CharField("结果", max_length=12, choices=NotificationOutcome.choices)
    reason = models.CharField("原因", max_length=200, blank=True)
    params = models.JSONField("参数（签名已遮蔽）", default=dict)
    remote_addr = models.GenericIPAddressField("来源 IP", null=True, blank=True)
    received_at = models.DateTimeField("收到时间", auto_now_add=True)

    class Meta:
        verbose_name = "支付通知"
        verbose_name_plural = "支付通知"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} {self.received_at:%Y-%m-%d %H:%M:%S}"
