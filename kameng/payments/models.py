"""Payment channels, payments (one per attempt to collect money) and every notification received."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from kameng.core.fields import EncryptedTextField


class ChannelKind(models.TextChoices):
    EPAY_V1 = "epay_v1", "易支付 V1 (MD5)"
    EPAY_V2 = "epay_v2", "易支付 V2 (RSA)"
    ALIPAY = "alipay", "支付宝开放平台 (RSA2)"
    WECHAT_V3 = "wechat_v3", "微信支付 API v3 (Native)"
    UNIONPAY = "unionpay", "中国银联 网关支付 (5.1.0)"
    BALANCE = "balance", "钱包余额"


# Which kinds show a QR code to scan rather than redirecting the browser (decided by the channel's pay_type too).
QR_PAY_TYPES = {"precreate", "native", "qrcode"}

# What each protocol needs filled in before it may be used (balance needs none): the admin form refuses to save a
# channel without them, and the payment services refuse to use one (a channel saved before, or written in code).
CHANNEL_REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    ChannelKind.EPAY_V1: ("gateway_url", "merchant_id", "merchant_key"),
    ChannelKind.EPAY_V2: ("gateway_url", "merchant_id", "merchant_key", "platform_public_key"),
    ChannelKind.ALIPAY: ("gateway_url", "merchant_id", "merchant_key", "platform_public_key"),
    ChannelKind.WECHAT_V3: ("gateway_url", "merchant_id", "app_id", "merchant_key", "merchant_serial_no",
                            "platform_public_key", "platform_key_id", "api_v3_key"),
    ChannelKind.UNIONPAY: ("gateway_url", "merchant_id", "merchant_key", "platform_public_key"),
    ChannelKind.BALANCE: (),
}


class PaymentChannel(models.Model):
    code = models.SlugField("通道标识", max_length=40, unique=True, help_text="出现在异步通知地址里")
    name = models.CharField("显示名称", max_length=60)
    kind = models.CharField("协议", max_length=20, choices=ChannelKind.choices)
    is_enabled = models.BooleanField("启用", default=True)
    gateway_url = models.URLField(
        "网关地址", blank=True, help_text="易支付：submit.php 所在目录；支付宝：gateway.do 完整地址；微信：API 根地址；"
                              "银联：gateway/api/ 根地址")
    merchant_id = models.CharField("商户号", max_length=64, blank=True,
                                   help_text="易支付 pid / 支付宝 app_id / 微信 mchid / 银联 merId")
    merchant_key = EncryptedTextField(
        "商户密钥", context="payments.paymentchannel.merchant_key", null=True, blank=True,
        help_text="易支付 V1 的 MD5 密钥，或商户 RSA 私钥（易支付 V2 / 支付宝应用私钥 / 微信商户私钥 / "
                  "银联签名私钥或 base64 编码的 .pfx）")
    platform_public_key = models.TextField(
        "平台公钥", blank=True, help_text="易支付 V2 平台公钥 / 支付宝公钥 / 微信支付公钥（PEM 或 base64）/ "
                              "银联根证书和中级证书（PEM）")
    platform_key_id = models.CharField("平台公钥 ID", max_length=64, blank=True,
                                       help_text="微信支付公钥 ID（PUB_KEY_ID_…）或平台证书序列号")
    app_id = models.CharField("应用 ID (appid)", max_length=64, blank=True, help_text="微信支付绑定的 appid")
    merchant_serial_no = models.CharField("商户证书序列号", max_length=64, blank=True,
                                          help_text="微信支付商户 API 证书序列号 / "
                                          "银联 certId（签名证书序列号十进制，可留空自动读取）")
    api_v3_key = EncryptedTextField(
        "APIv3 密钥", context="payments.paymentchannel.api_v3_key", null=True, blank=True,
        help_text="微信支付 APIv3 密钥（32 字节），用于解密通知；银联：签名证书（.pfx）密码")
    pay_type = models.CharField(
        "支付方式 (type)", max_length=20, blank=True, default="alipay",
        help_text="易支付：alipay / wxpay / qqpay（留空用收银台）；"
                  "支付宝：page（网页）或 precreate（扫码）；微信：native；银联：07（电脑）或 08（手机）")
    min_amount = models.DecimalField("单笔最低", max_digits=12, decimal_places=2, default=Decimal("0.01"))
    max_amount = models.DecimalField("单笔最高", max_digits=12, decimal_places=2, default=Decimal("50000.00"))
    sort_order = models.IntegerField("排序", default=0)

    class Meta:
        verbose_name = "支付通道"
        verbose_name_plural = "支付通道"
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.name

    def missing_fields(self) -> list[str]:
        """Labels of the fields this channel's protocol needs and it lacks (blank or only spaces)."""
        labels = {field.name: str(field.verbose_name) for field in self._meta.fields}
        return [labels[name] for name in CHANNEL_REQUIRED_FIELDS.get(self.kind, ())
                if not str(getattr(self, name) or "").strip()]


class PaymentPurpose(models.TextChoices):
    WALLET_TOPUP = "wallet_topup", "钱包充值"
    ORDER = "order", "订单支付"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "待支付"
    SUCCEEDED = "succeeded", "已支付"
    CLOSED = "closed", "已关闭"  # can no longer pay anything; still credited if proven paid later


class PaymentCloseReason(models.TextChoices):
    """Why a pending payment was closed (kameng.payments.reconciliation); shown to staff and to the buyer."""

    ORDER_EXPIRED = "order_expired", "订单已超时关闭"
    ORDER_CANCELLED = "order_cancelled", "订单已取消"
    ORDER_SETTLED = "order_settled", "订单已通过其他方式支付"
    TOPUP_UNPAID = "topup_unpaid", "长时间未收到付款"
    PAYMENT_FAILED = "payment_failed", "支付失败"  # the gateway's query said so beyond doubt: no money moved


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
    order = models.ForeignKey("orders.Order", verbose_name="订单", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="payments")
    qr_code = models.TextField("二维码内容", blank=True)
    refunded_amount = models.DecimalField("已原路退款", max_digits=12, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    paid_at = models.DateTimeField("到账时间", null=True, blank=True)
    closed_at = models.DateTimeField("关闭时间", null=True, blank=True)
    close_reason = models.CharField("关闭原因", max_length=20, choices=PaymentCloseReason.choices, blank=True)
    close_detail = models.CharField("关闭说明", max_length=200, blank=True,
                                    help_text="关闭前最终查询与通道关单的结果；关闭后仍到账的，原因保留在此")
    # Reconciliation asks each pending payment on its own schedule (kameng.payments.reconciliation); empty: not
    # asked yet, due as soon as it is old enough.
    last_queried_at = models.DateTimeField("最近查询时间", null=True, blank=True, editable=False)
    next_query_at = models.DateTimeField("下次查询时间", null=True, blank=True, editable=False)
    # Where the buyer started it from (the AML review shows linked addresses and devices; kameng.payments.aml).
    # The device id is kept as its keyed blind index only (kameng.core.device).
    client_ip = models.GenericIPAddressField("发起地址", null=True, blank=True, editable=False)
    device_index = models.BinaryField("设备标识索引", max_length=32, null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "支付单"
        verbose_name_plural = "支付单"
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_payment_amount_positive",
                                   violation_error_message="支付金额必须大于 0"),
            models.CheckConstraint(condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("amount")),
                                   name="payments_payment_refund_within_amount",
                                   violation_error_message="已退款金额必须在 0 到支付金额之间：退款不能超过实付金额"),
            models.CheckConstraint(condition=~Q(status=PaymentStatus.CLOSED) | ~Q(close_reason=""),
                                   name="payments_payment_closed_has_reason",
                                   violation_error_message="已关闭的支付单必须填写关闭原因"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="payments_payment_status_age"),
                   models.Index(fields=["status", "next_query_at"], name="payments_payment_query_due")]

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


class RefundDestination(models.TextChoices):
    WALLET = "wallet", "退到钱包余额"
    ORIGINAL = "original", "原路退回"


class RefundStatus(models.TextChoices):
    PENDING = "pending", "处理中"
    REVIEW = "review", "待人工核实"  # outcome unknown and the gateway cannot be asked: staff check and confirm
    SUCCEEDED = "succeeded", "已退款"
    FAILED = "failed", "失败（已退回钱包）"


class Refund(models.Model):
    """A refund of (part of) an order. To the wallet it is one journal; to the original channel the money also
    leaves the wallet through the gateway, and comes back to the wallet if the gateway refuses. One whose outcome
    the gateway cannot tell waits in `review` for staff (kameng.payments.refunds)."""

    number = models.CharField("退款单号 (out_refund_no)", max_length=32, unique=True)
    # None for the refund of a wallet top-up rejected by AML review (kameng.payments.aml): it has no order.
    order = models.ForeignKey("orders.Order", verbose_name="订单", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="refunds")
    payment = models.ForeignKey(Payment, verbose_name="原支付单", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="refunds")
    amount = models.DecimalField("退款金额", max_digits=12, decimal_places=2)
    destination = models.CharField("退款去向", max_length=10, choices=RefundDestination.choices)
    status = models.CharField("状态", max_length=10, choices=RefundStatus.choices, default=RefundStatus.PENDING)
    reason = models.CharField("退款原因", max_length=200, blank=True)
    gateway_refund_no = models.CharField("通道退款流水号", max_length=64, blank=True)
    failure_reason = models.CharField(
        "原因", max_length=200, blank=True,
        help_text="失败原因、待人工核实的原因，或处理中最近一次的通道应答 / 错误")
    attempts = models.PositiveSmallIntegerField(
        "发送次数", default=0,
        help_text="可能已到达通道的退款请求数；大于 0 而结果未确认时，只查询、不盲目重发")
    last_sent_at = models.DateTimeField("最近发送时间", null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="操作人", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    finished_at = models.DateTimeField("完成时间", null=True, blank=True)
    # The staff form's id: the same form posted twice makes one refund (NULL for refunds made by code).
    request_id = models.CharField("请求号", max_length=64, null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "退款单"
        verbose_name_plural = "退款单"
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_refund_amount_positive",
                                   violation_error_message="退款金额必须大于 0"),
            models.UniqueConstraint(fields=["order", "request_id"], name="payments_refund_unique_request",
                                    violation_error_message="这张退款表单已经提交过"),
        ]

    def __str__(self) -> str:
        return self.number


# --- AML review of large top-ups (反洗钱, kameng.payments.aml) ------------------------------------------------------

AML_IDENTITY_NAME_CONTEXT = "payments.amlreview.identity_name"
AML_IDENTITY_ID_NUMBER_CONTEXT = "payments.amlreview.identity_id_number"


class AmlPolicy(models.Model):
    """The AML review's thresholds as staff set them (one row; absent → the KAMENG_AML_* settings)."""

    threshold = models.DecimalField("单笔审核阈值", max_digits=12, decimal_places=2,
                                    help_text="单笔充值高于此金额（不含等于）进入人工审核")
    structuring_ratio = models.DecimalField(
        "拆分充值比例", max_digits=4, decimal_places=2,
        help_text="单笔金额不低于「阈值 × 此比例」的充值计入拆分充值次数，如 0.80")
    structuring_count = models.PositiveSmallIntegerField(
        "拆分充值次数", help_text="窗口内达到此笔数（含本笔）即审核；0 表示不启用")
    structuring_daily_sum = models.DecimalField(
        "窗口内累计金额", max_digits=12, decimal_places=2,
        help_text="窗口内多笔充值（含本笔）合计高于此金额即审核；0 表示不启用")
    structuring_window_hours = models.PositiveSmallIntegerField("统计窗口（小时）")
    retention_days = models.PositiveIntegerField("身份信息保留天数", help_text="审核结束后保留身份快照的天数")
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "反洗钱审核规则"
        verbose_name_plural = "反洗钱审核规则"

    def __str__(self) -> str:
        return f"单笔 > ¥{self.threshold}"


class AmlReviewStatus(models.TextChoices):
    HELD = "held", "审核中"
    APPROVED = "approved", "已通过"
    REJECTED = "rejected", "已驳回"


class AmlReason(models.TextChoices):
    SINGLE_OVER_THRESHOLD = "single_over_threshold", "单笔充值金额较大"
    STRUCTURING = "structuring", "疑似拆分充值"


class AmlReview(models.Model):
    """A wallet top-up held for AML review (反洗钱): its money waits in the buyer's WALLET_HOLD account until staff
    approve (→ wallet) or reject it (→ refunded through the original channel, `refund`). The buyer's verified
    identity at the time is kept with it, encrypted, for KAMENG_AML_RETENTION_DAYS after the decision."""

    number = models.CharField("审核单号", max_length=32, unique=True)
    payment = models.OneToOneField(Payment, verbose_name="充值支付单", on_delete=models.PROTECT,
                                   related_name="aml_review")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="用户", on_delete=models.PROTECT,
                             related_name="aml_reviews")
    amount = models.DecimalField("金额", max_digits=12, decimal_places=2)
    status = models.CharField("状态", max_length=10, choices=AmlReviewStatus.choices, default=AmlReviewStatus.HELD)
    reason = models.CharField("审核原因", max_length=30, choices=AmlReason.choices)
    reason_detail = models.CharField("原因说明", max_length=200, help_text="买家可见")
    rejection_reason = models.CharField("驳回原因", max_length=200, blank=True, help_text="买家可见")
    refund = models.ForeignKey(Refund, verbose_name="原路退款单", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="审核人", null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    reviewed_at = models.DateTimeField("审核时间", null=True, blank=True)
    # The identity snapshot (实名 at the time of the top-up): encrypted, purged after the retention period.
    identity_status = models.CharField("当时实名状态", max_length=12, blank=True)
    identity_name = EncryptedTextField("当时实名姓名", null=True, blank=True, context=AML_IDENTITY_NAME_CONTEXT)
    identity_id_number = EncryptedTextField("当时身份证号", null=True, blank=True,
                                            context=AML_IDENTITY_ID_NUMBER_CONTEXT)
    identity_purged_at = models.DateTimeField("身份快照清除时间", null=True, blank=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = "充值审核（反洗钱）"
        verbose_name_plural = "充值审核（反洗钱）"
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="payments_aml_status_age")]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="payments_aml_amount_positive",
                                              violation_error_message="审核金额必须大于 0")]

    def __str__(self) -> str:
        return self.number
