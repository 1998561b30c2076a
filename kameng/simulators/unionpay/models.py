"""The simulated UnionPay's own books: its certificate authority, merchants (with the certificate they sign with)
and transactions (consumes and refunds alike, each named by merId + orderId + txnTime as at UnionPay).

They belong to the pretend gateway, not to kameng's payments, and exist only for the demo and the tests.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from kameng.core.fields import EncryptedTextField
from kameng.simulators.base_models import NotifiedTrade


class SimulatedUnionPayAuthority(models.Model):
    """The simulator's certificate authority, made on first use: the root and intermediate certificates a
    merchant configures as trusted, and the signing certificate sent in every signPubKeyCert."""

    name = models.CharField("名称", max_length=20, unique=True, default="default")
    root_certificate = models.TextField("根证书")
    middle_certificate = models.TextField("中级证书")
    middle_private_key = EncryptedTextField("中级证书私钥", context="sim_unionpay.authority.middle_key")
    signing_certificate = models.TextField("银联签名证书")
    signing_private_key = EncryptedTextField("银联签名私钥", context="sim_unionpay.authority.signing_key")
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = "模拟银联证书"
        verbose_name_plural = "模拟银联证书"

    def __str__(self) -> str:
        return self.name

    @property
    def trust_bundle(self) -> str:
        """What a merchant configures as UnionPay's root and intermediate certificates."""
        return self.root_certificate + self.middle_certificate


class SimulatedUnionPayMerchant(models.Model):
    mer_id = models.CharField("商户代码 (merId)", max_length=15, unique=True)
    name = models.CharField("商户名称", max_length=100)
    certificate = models.TextField("商户签名证书", help_text="PEM，用于验证商户请求的签名")
    cert_id = models.CharField("证书 ID (certId)", max_length=40, help_text="商户签名证书序列号的十进制")
    is_active = models.BooleanField("启用", default=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = "模拟银联商户"
        verbose_name_plural = "模拟银联商户"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.mer_id})"


class SimulatedUnionPayStatus(models.TextChoices):
    WAITING = "waiting", "等待付款"
    SUCCEEDED = "succeeded", "成功"
    FAILED = "failed", "失败"


class SimulatedUnionPayTrade(NotifiedTrade):
    query_id = models.CharField("交易流水号 (queryId)", max_length=21, unique=True)
    merchant = models.ForeignKey(SimulatedUnionPayMerchant, verbose_name="商户", on_delete=models.PROTECT,
                                 related_name="trades")
    order_id = models.CharField("商户订单号 (orderId)", max_length=40)
    txn_time = models.CharField("订单发送时间 (txnTime)", max_length=14)
    txn_type = models.CharField("交易类型 (txnType)", max_length=2, help_text="01 消费，04 退货")
    channel_type = models.CharField("渠道类型", max_length=2, blank=True)
    amount = models.DecimalField("金额", max_digits=12, decimal_places=2)
    refunded_amount = models.DecimalField("已退货金额", max_digits=12, decimal_places=2, default=Decimal("0.00"))
    original = models.ForeignKey("self", verbose_name="原消费交易", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="refunds")
    front_url = models.CharField("前台通知地址 (frontUrl)", max_length=500, blank=True)
    back_url = models.CharField("后台通知地址 (backUrl)", max_length=500, blank=True)
    status = models.CharField("状态", max_length=10, choices=SimulatedUnionPayStatus.choices,
                              default=SimulatedUnionPayStatus.WAITING)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    finished_at = models.DateTimeField("完成时间", null=True, blank=True)

    class Meta:
        verbose_name = "模拟银联交易"
        verbose_name_plural = "模拟银联交易"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "order_id", "txn_time"], name="sim_unionpay_trade_order"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="sim_unionpay_trade_amount_positive",
                                   violation_error_message="交易金额必须大于 0"),
            models.CheckConstraint(condition=models.Q(refunded_amount__lte=models.F("amount")),
                                   name="sim_unionpay_trade_refund_within_amount",
                                   violation_error_message="已退货金额不能超过交易金额"),
        ]

    def __str__(self) -> str:
        return self.query_id

    @property
    def is_paid(self) -> bool:
        return self.status == SimulatedUnionPayStatus.SUCCEEDED
