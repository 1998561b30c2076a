"""The simulated 易支付 gateway's own books: merchants it knows and the trades it has taken.

These tables belong to the pretend gateway, not to kameng's payments; in a real deployment they would live on
someone else's server. They exist only so the demo and the tests can pay without internet.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from kameng.core.fields import EncryptedTextField
from kameng.simulators.base_models import NotifiedTrade


class SimulatedEpayMerchant(models.Model):
    pid = models.CharField("商户号 (pid)", max_length=64, unique=True)
    key = EncryptedTextField("商户密钥", context="simulators.simulatedepaymerchant.key")
    name = models.CharField("商户名称", max_length=100)
    is_active = models.BooleanField("启用", default=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = "模拟易支付商户"
        verbose_name_plural = "模拟易支付商户"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.pid})"

    @property
    def signing_key(self) -> str:
        """The decrypted key as text (the field is typed as binary, it holds ciphertext in the database)."""
        return str(self.key)


class SimulatedTradeStatus(models.TextChoices):
    PENDING = "pending", "待支付"
    PAID = "paid", "已支付"


class SimulatedEpayTrade(NotifiedTrade):
    trade_no = models.CharField("平台订单号 (trade_no)", max_length=32, unique=True)
    merchant = models.ForeignKey(SimulatedEpayMerchant, verbose_name="商户", on_delete=models.PROTECT,
                                 related_name="trades")
    out_trade_no = models.CharField("商户订单号", max_length=64)
    type = models.CharField("支付方式", max_length=20, blank=True)
    name = models.CharField("商品名称", max_length=255)
    money_raw = models.CharField("金额（原始字符串）", max_length=32,
                                 help_text="商户签名时使用的原始字符串，例如 1 或 1.00")
    money = models.DecimalField("金额", max_digits=12, decimal_places=2)
    refunded_money = models.DecimalField("已退款金额", max_digits=12, decimal_places=2, default=Decimal("0.00"))
    notify_url = models.CharField("异步通知地址", max_length=500)
    return_url = models.CharField("同步跳转地址", max_length=500, blank=True)
    param = models.TextField("附加参数", blank=True)
    client_ip = models.CharField("客户端 IP", max_length=64, blank=True)
    status = models.CharField("状态", max_length=10, choices=SimulatedTradeStatus.choices,
                              default=SimulatedTradeStatus.PENDING)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    paid_at = models.DateTimeField("支付时间", null=True, blank=True)

    class Meta:
        verbose_name = "模拟易支付交易"
        verbose_name_plural = "模拟易支付交易"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "out_trade_no"], name="simulators_trade_out_trade_no"),
            models.CheckConstraint(condition=models.Q(money__gt=0), name="simulators_trade_money_positive",
                                   violation_error_message="交易金额必须大于 0"),
            models.CheckConstraint(condition=models.Q(refunded_money__lte=models.F("money")),
                                   name="simulators_trade_refund_within_money",
                                   violation_error_message="已退款金额不能超过交易金额"),
        ]

    def __str__(self) -> str:
        return self.trade_no

    @property
    def is_paid(self) -> bool:
        return self.status == SimulatedTradeStatus.PAID
