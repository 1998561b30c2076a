"""The simulated 易支付 V2 gateway's own books: merchants (with the platform key pair made for each), trades and
refunds. They belong to the pretend gateway, not to kameng's payments, and exist only for the demo and the tests.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from kameng.core.fields import EncryptedTextField
from kameng.simulators.base_models import NotifiedTrade


class SimulatedEpayV2Merchant(models.Model):
    pid = models.CharField("商户号 (pid)", max_length=64, unique=True)
    name = models.CharField("商户名称", max_length=100)
    merchant_public_key = models.TextField("商户公钥", help_text="base64，用于验证商户请求的签名")
    platform_public_key = models.TextField("平台公钥", help_text="base64，交给商户验证通知和应答")
    platform_private_key = EncryptedTextField("平台私钥", context="sim_epay_v2.simulatedepayv2merchant.platform_key")
    is_active = models.BooleanField("启用", default=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = "模拟易支付 V2 商户"
        verbose_name_plural = "模拟易支付 V2 商户"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.pid})"

    @property
    def platform_signing_key(self) -> str:
        """The decrypted platform private key (the field is typed as binary: it holds ciphertext in the DB)."""
        return str(self.platform_private_key)


class SimulatedEpayV2TradeStatus(models.TextChoices):
    PENDING = "pending", "待支付"
    PAID = "paid", "已支付"


class SimulatedEpayV2Trade(NotifiedTrade):
    trade_no = models.CharField("平台订单号 (trade_no)", max_length=32, unique=True)
    merchant = models.ForeignKey(SimulatedEpayV2Merchant, verbose_name="商户", on_delete=models.PROTECT,
                                 related_name="trades")
    out_trade_no = models.CharField("商户订单号", max_length=64)
    method = models.CharField("接口类型 (method)", max_length=10)
    device = models.CharField("设备类型", max_length=10, blank=True)
    type = models.CharField("支付方式", max_length=20)
    name = models.CharField("商品名称", max_length=255)
    money_raw = models.CharField("金额（原始字符串）", max_length=32,
                                 help_text="商户签名时使用的原始字符串，例如 1 或 1.00")
    money = models.DecimalField("金额", max_digits=12, decimal_places=2)
    refunded_money = models.DecimalField("已退款金额", max_digits=12, decimal_places=2, default=Decimal("0.00"))
    notify_url = models.CharField("异步通知地址", max_length=500)
    return_url = models.CharField("同步跳转地址", max_length=500, blank=True)
    param = models.TextField("附加参数", blank=True)
    client_ip = models.CharField("客户端 IP", max_length=64, blank=True)
    status = models.CharField("状态", max_length=10, choices=SimulatedEpayV2TradeStatus.choices,
                              default=SimulatedEpayV2TradeStatus.PENDING)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    paid_at = models.DateTimeField("支付时间", null=True, blank=True)

    class Meta:
        verbose_name = "模拟易支付 V2 交易"
        verbose_name_plural = "模拟易支付 V2 交易"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "out_trade_no"], name="sim_epay_v2_trade_out_trade_no"),
            models.CheckConstraint(condition=models.Q(money__gt=0), name="sim_epay_v2_trade_money_positive",
                                   violation_error_message="交易金额必须大于 0"),
            models.CheckConstraint(condition=models.Q(refunded_money__lte=models.F("money")),
                                   name="sim_epay_v2_trade_refund_within_money",
                                   violation_error_message="已退款金额不能超过交易金额"),
        ]

    def __str__(self) -> str:
        return self.trade_no

    @property
    def is_paid(self) -> bool:
        return self.status == SimulatedEpayV2TradeStatus.PAID


class SimulatedEpayV2Refund(models.Model):
    """One refund, unique per merchant by `out_refund_no` so that asking again returns the same refund."""

    refund_no = models.CharField("平台退款单号", max_length=32, unique=True)
    merchant = models.ForeignKey(SimulatedEpayV2Merchant, verbose_name="商户", on_delete=models.PROTECT,
                                 related_name="refunds")
    trade = models.ForeignKey(SimulatedEpayV2Trade, verbose_name="交易", on_delete=models.PROTECT,
                              related_name="refunds")
    out_refund_no = models.CharField("商户退款单号", max_length=64)
    money = models.DecimalField("退款金额", max_digits=12, decimal_places=2)
    created_at = models.DateTimeField("退款时间", auto_now_add=True)

    class Meta:
        verbose_name = "模拟易支付 V2 退款"
        verbose_name_plural = "模拟易支付 V2 退款"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "out_refund_no"], name="sim_epay_v2_refund_out_refund_no"),
            models.CheckConstraint(condition=models.Q(money__gt=0), name="sim_epay_v2_refund_money_positive",
                                   violation_error_message="退款金额必须大于 0"),
        ]

    def __str__(self) -> str:
        return self.refund_no
