"""The simulated WeChat Pay's own books: merchants with their keys, Native trades and refunds.

These belong to the pretend gateway, not to kameng's payments; they exist so the demo and the tests can pay by
"scanning" a QR code without internet. Amounts are integer fen, as in the protocol.
"""

from __future__ import annotations

from django.db import models

from kameng.core.fields import EncryptedTextField
from kameng.simulators.base_models import NotifiedTrade


class SimulatedWechatMerchant(models.Model):
    mchid = models.CharField("商户号 (mchid)", max_length=32, unique=True)
    appid = models.CharField("应用 ID (appid)", max_length=32)
    name = models.CharField("商户名称", max_length=100, default="模拟商户")
    merchant_public_key = models.TextField("商户 API 公钥 (PEM)", help_text="用于验证商户请求的 Authorization 签名")
    merchant_serial_no = models.CharField("商户证书序列号", max_length=64)
    platform_private_key = EncryptedTextField("微信支付私钥", context="sim_wechat.merchant.platform_private_key")
    platform_public_key = models.TextField("微信支付公钥 (PEM)")
    platform_public_key_id = models.CharField("微信支付公钥 ID", max_length=64, unique=True)
    api_v3_key = EncryptedTextField("APIv3 密钥", context="sim_wechat.merchant.api_v3_key")
    is_active = models.BooleanField("启用", default=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = "模拟微信支付商户"
        verbose_name_plural = "模拟微信支付商户"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.mchid})"

    @property
    def platform_private_key_pem(self) -> str:
        return str(self.platform_private_key)

    @property
    def api_v3_key_text(self) -> str:
        return str(self.api_v3_key)


class TradeState(models.TextChoices):
    NOTPAY = "NOTPAY", "未支付"
    SUCCESS = "SUCCESS", "支付成功"
    REFUND = "REFUND", "转入退款"
    CLOSED = "CLOSED", "已关闭"


class SimulatedWechatTrade(NotifiedTrade):
    transaction_id = models.CharField("微信支付订单号", max_length=32, unique=True)
    merchant = models.ForeignKey(SimulatedWechatMerchant, verbose_name="商户", on_delete=models.PROTECT,
                                 related_name="trades")
    appid = models.CharField("应用 ID", max_length=32)
    out_trade_no = models.CharField("商户订单号", max_length=32)
    description = models.CharField("商品描述", max_length=127)
    total = models.PositiveIntegerField("订单金额（分）")
    notify_url = models.CharField("通知地址", max_length=256)
    attach = models.CharField("附加数据", max_length=128, blank=True)
    payer_client_ip = models.CharField("用户终端 IP", max_length=45, blank=True)
    trade_state = models.CharField("交易状态", max_length=10, choices=TradeState.choices, default=TradeState.NOTPAY)
    refunded_total = models.PositiveIntegerField("已退款（分）", default=0)
    # WeChat acknowledges with any 2xx, not a "success" body: the same column, its own help text.
    notified_at = models.DateTimeField("商户确认时间", null=True, blank=True,
                                       help_text="商户回复 2xx 的时间；为空表示仍需重试")
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    success_time = models.DateTimeField("支付完成时间", null=True, blank=True)

    class Meta:
        verbose_name = "模拟微信支付交易"
        verbose_name_plural = "模拟微信支付交易"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "out_trade_no"], name="sim_wechat_trade_out_trade_no"),
            models.CheckConstraint(condition=models.Q(total__gt=0), name="sim_wechat_trade_total_positive",
                                   violation_error_message="订单金额必须大于 0 分"),
            models.CheckConstraint(condition=models.Q(refunded_total__lte=models.F("total")),
                                   name="sim_wechat_trade_refund_within_total",
                                   violation_error_message="已退款金额不能超过订单金额"),
        ]

    def __str__(self) -> str:
        return self.transaction_id

    @property
    def is_paid(self) -> bool:
        return self.trade_state in (TradeState.SUCCESS, TradeState.REFUND)


class SimulatedWechatRefund(models.Model):
    refund_id = models.CharField("微信支付退款单号", max_length=32, unique=True)
    trade = models.ForeignKey(SimulatedWechatTrade, verbose_name="交易", on_delete=models.PROTECT,
                              related_name="refunds")
    out_refund_no = models.CharField("商户退款单号", max_length=64)
    refund = models.PositiveIntegerField("退款金额（分）")
    reason = models.CharField("退款原因", max_length=80, blank=True)
    status = models.CharField("状态", max_length=12, default="SUCCESS")
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = "模拟微信支付退款"
        verbose_name_plural = "模拟微信支付退款"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["trade", "out_refund_no"], name="sim_wechat_refund_out_refund_no"),
            models.CheckConstraint(condition=models.Q(refund__gt=0), name="sim_wechat_refund_positive",
                                   violation_error_message="退款金额必须大于 0 分"),
        ]

    def __str__(self) -> str:
        return self.refund_id
