"""The simulated Alipay's own books: apps (with the "Alipay" key pair made for each), trades and refunds.

They belong to the pretend gateway, not to kameng's payments, and exist only for the demo and the tests.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from kameng.core.fields import EncryptedTextField
from kameng.simulators.base_models import NotifiedTrade


class SimulatedAlipayApp(models.Model):
    app_id = models.CharField("应用 ID (app_id)", max_length=32, unique=True)
    name = models.CharField("应用名称", max_length=100)
    seller_id = models.CharField("收款账号 (seller_id)", max_length=16, unique=True,
                                 help_text="2088 开头的 16 位支付宝用户号")
    app_public_key = models.TextField("应用公钥", help_text="PEM 或 base64，用于验证应用请求的签名")
    platform_public_key = models.TextField("支付宝公钥", help_text="PEM，交给商户验证通知和应答")
    platform_private_key = EncryptedTextField("支付宝私钥", context="sim_alipay.simulatedalipayapp.platform_key")
    is_active = models.BooleanField("启用", default=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = "模拟支付宝应用"
        verbose_name_plural = "模拟支付宝应用"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.app_id})"

    @property
    def signing_key(self) -> str:
        """The decrypted platform private key (the field is typed as binary: it holds ciphertext in the database)."""
        return str(self.platform_private_key)


class SimulatedAlipayTradeStatus(models.TextChoices):
    WAIT_BUYER_PAY = "WAIT_BUYER_PAY", "等待付款"
    TRADE_SUCCESS = "TRADE_SUCCESS", "支付成功"
    TRADE_CLOSED = "TRADE_CLOSED", "已关闭"


class SimulatedAlipayTrade(NotifiedTrade):
    trade_no = models.CharField("支付宝交易号 (trade_no)", max_length=64, unique=True)
    app = models.ForeignKey(SimulatedAlipayApp, verbose_name="应用", on_delete=models.PROTECT, related_name="trades")
    out_trade_no = models.CharField("商户订单号", max_length=64)
    method = models.CharField("下单接口", max_length=40, help_text="alipay.trade.page.pay 或 alipay.trade.precreate")
    subject = models.CharField("订单标题", max_length=256)
    total_amount = models.DecimalField("订单金额", max_digits=12, decimal_places=2)
    refunded_amount = models.DecimalField("已退款金额", max_digits=12, decimal_places=2, default=Decimal("0.00"))
    notify_url = models.CharField("异步通知地址", max_length=500, blank=True)
    return_url = models.CharField("同步跳转地址", max_length=500, blank=True)
    status = models.CharField("交易状态", max_length=20, choices=SimulatedAlipayTradeStatus.choices,
                              default=SimulatedAlipayTradeStatus.WAIT_BUYER_PAY)
    buyer_id = models.CharField("买家用户号", max_length=16, blank=True)
    notify_id = models.CharField("通知 ID", max_length=64, blank=True, help_text="同一笔交易的重试通知保持不变")
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    paid_at = models.DateTimeField("付款时间", null=True, blank=True)

    class Meta:
        verbose_name = "模拟支付宝交易"
        verbose_name_plural = "模拟支付宝交易"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["app", "out_trade_no"], name="sim_alipay_trade_out_trade_no"),
            models.CheckConstraint(condition=models.Q(total_amount__gt=0), name="sim_alipay_trade_amount_positive",
                                   violation_error_message="订单金额必须大于 0"),
            models.CheckConstraint(condition=models.Q(refunded_amount__lte=models.F("total_amount")),
                                   name="sim_alipay_trade_refund_within_amount",
                                   violation_error_message="已退款金额不能超过订单金额"),
        ]

    def __str__(self) -> str:
        return self.trade_no

    @property
    def is_paid(self) -> bool:
        return self.status == SimulatedAlipayTradeStatus.TRADE_SUCCESS

    @property
    def is_qr(self) -> bool:
        return self.method == "alipay.trade.precreate"


class SimulatedAlipayRefund(models.Model):
    """One refund request; `out_request_no` makes it idempotent per trade."""

    trade = models.ForeignKey(SimulatedAlipayTrade, verbose_name="交易", on_delete=models.PROTECT,
                              related_name="refunds")
    out_request_no = models.CharField("退款请求号", max_length=64)
    refund_amount = models.DecimalField("退款金额", max_digits=12, decimal_places=2)
    reason = models.CharField("退款原因", max_length=256, blank=True)
    created_at = models.DateTimeField("退款时间", auto_now_add=True)

    class Meta:
        verbose_name = "模拟支付宝退款"
        verbose_name_plural = "模拟支付宝退款"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["trade", "out_request_no"], name="sim_alipay_refund_request_no"),
            models.CheckConstraint(condition=models.Q(refund_amount__gt=0), name="sim_alipay_refund_positive",
                                   violation_error_message="退款金额必须大于 0"),
        ]

    def __str__(self) -> str:
        return f"{self.trade_id}/{self.out_request_no}"
