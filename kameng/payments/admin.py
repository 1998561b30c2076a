"""Back office for payments: channel setup (secrets are write-only, keys are checked per protocol), payments,
refunds (read-only, with a safe retry for pending original-channel refunds and the settling of those held for
review), every notification, and the order page with its payments, refunds and refund action."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.widgets import UnfoldAdminPasswordWidget

from kameng.core.admin import ReadOnlyAdminMixin
from kameng.core.errors import ApplicationError
from kameng.orders.models import Order
from kameng.payments.gateways import unionpay
from kameng.payments.links import payment_notify_url
from kameng.payments.models import (
    CHANNEL_REQUIRED_FIELDS,
    ChannelKind,
    NotificationOutcome,
    Payment,
    PaymentChannel,
    PaymentNotification,
    Refund,
    RefundDestination,
    RefundStatus,
)
from kameng.payments.order_admin import OrderPaymentsAdmin
from kameng.payments.reconciliation import payment_recheck
from kameng.payments.refunds import refund_review_settle, refund_send_to_gateway

REFUND_PERMISSION = "payments.add_refund"
RECHECK_PERMISSION = "payments.change_payment"
RECHECK_MAX = 50  # each is a gateway call made while the page waits
MINIMUM_RSA_BITS = 2048
API_V3_KEY_LENGTH = 32

# Kinds whose merchant key is an RSA private key (epay V1's is an MD5 shared secret).
RSA_KINDS = {ChannelKind.EPAY_V2, ChannelKind.ALIPAY, ChannelKind.WECHAT_V3}
PAY_TYPES: dict[str, tuple[str, ...]] = {ChannelKind.ALIPAY: ("page", "precreate"), ChannelKind.WECHAT_V3: ("native",),
                                         ChannelKind.UNIONPAY: ("07", "08")}
SECRET_FIELDS = ("merchant_key", "api_v3_key")


def notify_url_of(channel: PaymentChannel) -> str:
    return payment_notify_url(channel_code=channel.code)


def _der_of(text: str) -> bytes:
    """A bare key as platforms hand it out: base64 of the DER bytes, possibly wrapped over several lines."""
    return base64.b64decode("".join(text.split()), validate=True)


def rsa_private_key_problem(text: str) -> str | None:
    """None when `text` is a usable RSA private key (PEM, or bare base64 DER in PKCS#8 or PKCS#1), else why not."""
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.strip().encode(), password=None)
        else:
            key = serialization.load_der_private_key(_der_of(text), password=None)
    except TypeError:
        return "私钥带有密码保护，请导出不加密的私钥"
    except (ValueError, binascii.Error):
        return "无法解析为 RSA 私钥：请粘贴 PEM（-----BEGIN PRIVATE KEY-----）或不含头尾的 base64 私钥"
    except Exception:  # cryptography raises UnsupportedAlgorithm and others on odd input
        return "无法解析为 RSA 私钥：格式不受支持"
    if not isinstance(key, rsa.RSAPrivateKey):
        return "不是 RSA 私钥（本通道使用 RSA 签名）"
    if key.key_size < MINIMUM_RSA_BITS:
        return f"RSA 私钥长度为 {key.key_size} 位，至少需要 {MINIMUM_RSA_BITS} 位"
    return None


def rsa_public_key_problem(text: str) -> str | None:
    """None when `text` is a usable RSA public key (PEM, X.509 certificate PEM, or bare base64 DER), else why not."""
    try:
        if "-----BEGIN CERTIFICATE" in text:
            key: Any = x509.load_pem_x509_certificate(text.strip().encode()).public_key()
        elif "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.strip().encode())
        else:
            key = serialization.load_der_public_key(_der_of(text))
    except (ValueError, binascii.Error):
        return "无法解析为 RSA 公钥：请粘贴 PEM（-----BEGIN PUBLIC KEY-----）或不含头尾的 base64 公钥"
    except Exception:  # cryptography raises UnsupportedAlgorithm and others on odd input
        return "无法解析为 RSA 公钥：格式不受支持"
    if not isinstance(key, rsa.RSAPublicKey):
        return "不是 RSA 公钥（本通道使用 RSA 验签）"
    if key.key_size < MINIMUM_RSA_BITS:
        return f"RSA 公钥长度为 {key.key_size} 位，至少需要 {MINIMUM_RSA_BITS} 位"
    return None


def _formfield(db_field: Any, **kwargs: Any) -> Any:
    if db_field.name == "gateway_url":
        kwargs["assume_scheme"] = "https"  # gateways are reached over HTTPS; a bare host means https://
    return db_field.formfield(**kwargs)


def _secret_widget() -> UnfoldAdminPasswordWidget:
    return UnfoldAdminPasswordWidget(render_value=False, attrs={"autocomplete": "new-password"})


class PaymentChannelForm(forms.ModelForm):
    """Secrets (merchant key, APIv3 key) can be set or replaced but never read back: blank keeps the stored one.
    What a channel needs depends on its protocol, so the requirements are checked together in clean()."""

    merchant_key = forms.CharField(
        label="商户密钥", required=False, strip=True, widget=_secret_widget(),
        help_text="只写字段，已保存的密钥不会显示；留空保留原密钥，填写则替换。易支付 V1：MD5 密钥；易支付 V2：商户 "
                  "RSA 私钥；支付宝：应用私钥（RSA2）；微信支付：商户 API 私钥（apiclient_key.pem）。"
                  "私钥可粘贴 PEM 或不含头尾的 base64。银联：签名私钥 PEM（可附签名证书），或 .pfx 文件的 base64。",
    )
    api_v3_key = forms.CharField(
        label="APIv3 密钥", required=False, strip=True, widget=_secret_widget(),
        help_text="只写字段。微信支付：32 个字符，用于解密异步通知；银联：.pfx 签名证书的密码。留空保留原密钥。",
    )

    class Meta:
        model = PaymentChannel
        fields = ("code", "name", "kind", "is_enabled", "gateway_url", "merchant_id", "app_id", "merchant_key",
                  "merchant_serial_no", "platform_public_key", "platform_key_id", "api_v3_key", "pay_type",
                  "min_amount", "max_amount", "sort_order")
        formfield_callback = _formfield
        help_texts = {
            "gateway_url": "易支付：submit.php 所在目录（如 https://pay.example.com/）；支付宝：gateway.do 完整地址；"
                           "微信支付：API 根地址（https://api.mch.weixin.qq.com）；银联：https://gateway.95516.com/gateway/api/"
                           "（测试环境 https://gateway.test.95516.com/gateway/api/）。余额支付不需要。",
            "merchant_id": "易支付：商户 ID (pid)；支付宝：应用 app_id；微信支付：商户号 mchid；银联：商户代码 merId。",
            "app_id": "仅微信支付：与商户号绑定的公众号 / 小程序 / 应用 appid。",
            "merchant_serial_no": "微信支付：商户 API 证书序列号；银联：证书 ID certId（签名证书序列号的十进制，"
                                  "留空则从证书读取）。",
            "platform_public_key": "易支付 V2：平台 RSA 公钥；支付宝：支付宝公钥（不是应用公钥）；"
                                   "微信支付：微信支付公钥或平台证书。PEM 或不含头尾的 base64。"
                                   "银联：验签根证书和中级证书（PEM，可多个）。",
            "platform_key_id": "仅微信支付：微信支付公钥 ID（PUB_KEY_ID_…）或平台证书序列号。",
            "pay_type": "易支付：alipay / wxpay / qqpay（留空进入收银台）；支付宝：page（电脑网页支付）或 "
                        "precreate（当面付扫码）；微信支付：native（扫码）；银联：07（电脑网页）或 08（手机网页）。",
            "min_amount": "单笔订单或充值低于此金额时不提供本通道。",
            "max_amount": "单笔订单或充值高于此金额时不提供本通道。",
            "sort_order": "数字小的排在前面。",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in SECRET_FIELDS:
            if name in self.fields and getattr(self.instance, name, None):
                self.fields[name].widget.attrs["placeholder"] = "已设置（留空保留）"

    def _secret(self, name: str) -> str:
        value: str = self.cleaned_data.get(name) or ""
        if value:
            return value
        # Keep what is stored (the field decrypts it on load and re-encrypts it on save; it is never rendered).
        stored = getattr(self.instance, name, None) if self.instance.pk else None
        return str(stored) if stored else ""

    def clean_merchant_key(self) -> str:
        return self._secret("merchant_key")

    def clean_api_v3_key(self) -> str:
        return self._secret("api_v3_key")

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        kind = data.get("kind")
        minimum, maximum = data.get("min_amount"), data.get("max_amount")
        if minimum is not None and minimum <= 0:
            self.add_error("min_amount", "单笔最低金额必须大于 0")
        if minimum is not None and maximum is not None and minimum > maximum:
            self.add_error("max_amount", "单笔最高金额不能小于单笔最低金额")
        if kind not in CHANNEL_REQUIRED_FIELDS:
            return data
        label = ChannelKind(kind).label
        for name in CHANNEL_REQUIRED_FIELDS[kind]:
            if not data.get(name) and name not in self.errors:
                self.add_error(name, f"{label} 必须填写「{self.fields[name].label}」")
        if kind in PAY_TYPES:
            allowed = PAY_TYPES[kind]
            pay_type = (data.get("pay_type") or "").strip()
            if not pay_type:
                data["pay_type"] = pay_type = allowed[0]
            if pay_type not in allowed:
                self.add_error("pay_type", f"{label} 的支付方式只能是 {' / '.join(allowed)}")
        self._check_keys(kind, data)
        return data

    def _check_keys(self, kind: str, data: dict[str, Any]) -> None:
        if kind in RSA_KINDS:
            if data.get("merchant_key") and (problem := rsa_private_key_problem(data["merchant_key"])):
                self.add_error("merchant_key", f"商户私钥有误：{problem}")
            if data.get("platform_public_key") and (problem := rsa_public_key_problem(data["platform_public_key"])):
                self.add_error("platform_public_key", f"平台公钥有误：{problem}")
        if kind == ChannelKind.UNIONPAY:
            self._check_unionpay(data)
        if kind == ChannelKind.WECHAT_V3 and data.get("api_v3_key") and len(data["api_v3_key"]) != API_V3_KEY_LENGTH:
            self.add_error("api_v3_key",
                           f"APIv3 密钥必须正好 {API_V3_KEY_LENGTH} 个字符（当前 {len(data['api_v3_key'])} 个）")

    def _check_unionpay(self, data: dict[str, Any]) -> None:
        """The signing key (PEM or .pfx with its password) and certId, and the trusted UnionPay certificates."""
        if data.get("merchant_key"):
            try:
                unionpay.merchant_credentials_load(key_text=data["merchant_key"], password=data.get("api_v3_key") or "",
                                                   cert_id=data.get("merchant_serial_no") or "")
            except ValueError as error:
                self.add_error("merchant_key", f"银联签名证书有误：{error}")
        if data.get("platform_public_key"):
            try:
                unionpay.trust_bundle_load(data["platform_public_key"])
            except ValueError as error:
                self.add_error("platform_public_key", f"银联根证书有误：{error}")

    def save(self, commit: bool = True) -> Any:
        for name in SECRET_FIELDS:  # an unset secret is NULL, not an encrypted empty string
            if not self.cleaned_data.get(name):
                setattr(self.instance, name, None)
        return super().save(commit=commit)


@admin.register(PaymentChannel)
class PaymentChannelAdmin(ModelAdmin):
    form = PaymentChannelForm
    list_display = ("name", "code", "kind", "is_enabled", "min_amount", "max_amount", "sort_order", "notify_url")
    list_editable = ("is_enabled", "sort_order")
    list_filter = ("kind", "is_enabled")
    search_fields = ("name", "code", "merchant_id")
    readonly_fields = ("notify_url",)
    fieldsets = (
        ("基本", {"fields": ("name", "code", "kind", "is_enabled", "sort_order", "notify_url")}),
        ("单笔金额限制", {"fields": ("min_amount", "max_amount")}),
        ("网关与商户（易支付 / 支付宝 / 微信支付）", {
            "fields": ("gateway_url", "merchant_id", "merchant_key", "pay_type"),
            "description": "易支付 V1 需要网关地址、商户 ID 和 MD5 密钥；易支付 V2 与支付宝另需下方的平台公钥，"
                           "商户密钥填 RSA 私钥；钱包余额通道无需填写。",
        }),
        ("RSA 验签（易支付 V2 / 支付宝 / 微信支付）", {"fields": ("platform_public_key",)}),
        ("微信支付 API v3", {
            "fields": ("app_id", "merchant_serial_no", "platform_key_id", "api_v3_key"),
            "description": "仅微信支付 Native 扫码需要：appid、商户证书序列号、微信支付公钥 ID 和 32 位 APIv3 密钥。",
        }),
    )

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "gateway_url":
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @display(description="异步通知地址")
    def notify_url(self, obj: PaymentChannel) -> str:
        if obj.kind == ChannelKind.BALANCE:
            return "—（余额支付无通知）"
        return notify_url_of(obj) if obj.pk and obj.code else "保存后生成"


class ReadOnlyAdmin(ReadOnlyAdminMixin, ModelAdmin):
    pass


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    """Payments as the gateways left them. A pending one that can no longer pay anything (its order closed, or a
    top-up unpaid for a day) is closed by the reconciliation job after a final query: 已关闭, with why (关闭原因)
    and what the gateway answered (关闭说明). One paid after all is still credited and keeps its close reason."""

    list_display = ("number", "user", "channel", "purpose", "order", "amount", "refunded_amount", "status",
                    "close_reason", "gateway_trade_no", "created_at", "paid_at")
    list_filter = ("status", "close_reason", "purpose", "channel", "created_at")
    list_select_related = ("user", "channel", "order")
    search_fields = ("=number", "=gateway_trade_no", "user__username", "=order__number")
    fields = ("number", "user", "channel", "purpose", "order", "amount", "refunded_amount", "status",
              "gateway_trade_no", "created_at", "paid_at", "closed_at", "close_reason", "close_detail")
    readonly_fields = fields
    actions = ("recheck_with_gateway",)

    def has_recheck_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(RECHECK_PERMISSION))

    @admin.action(description="向通道查询（已支付则入账，含已关闭的）", permissions=["recheck"])
    def recheck_with_gateway(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        answers: dict[str, tuple[str, int]] = {
            NotificationOutcome.CREDITED: ("已到账，已入账", messages.SUCCESS),
            NotificationOutcome.DUPLICATE: ("早已入账，未重复入账", messages.INFO),
            NotificationOutcome.NOT_PAID: ("通道显示未支付", messages.INFO),
            NotificationOutcome.REJECTED: ("通道显示已支付但金额不符，未入账（已记录风控事件）", messages.WARNING),
        }
        for payment in queryset.exclude(channel__kind=ChannelKind.BALANCE).order_by("pk")[:RECHECK_MAX]:
            try:
                outcome = payment_recheck(payment_id=payment.pk)
            except ApplicationError as error:  # unreachable gateway, channel missing a credential
                self.message_user(request, f"{payment.number}：查询失败（{error.message}）", messages.ERROR)
                continue
            text, level = answers.get(outcome, (outcome, messages.INFO))
            self.message_user(request, f"{payment.number}：{text}", level)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    """Refunds are made from the order page (they move money); here they are listed. A pending original-channel
    refund can be moved on by hand (sent if it never was; otherwise the gateway is asked, never sent blindly). One
    held for review (待人工核实: its outcome is unknown and the protocol has no refund query) is settled by staff
    after checking the gateway's back office: refunded there, or not (then the money goes back to the wallet)."""

    list_display = ("number", "order", "amount", "destination", "status", "failure_reason", "attempts",
                    "created_by", "created_at", "finished_at")
    list_filter = ("status", "destination", "created_at")
    list_select_related = ("order", "created_by")
    search_fields = ("=number", "=order__number", "=gateway_refund_no")
    date_hierarchy = "created_at"
    fields = ("number", "order", "payment", "amount", "destination", "status", "reason", "gateway_refund_no",
              "failure_reason", "attempts", "last_sent_at", "created_by", "created_at", "finished_at")
    readonly_fields = fields
    actions = ("retry_original_refunds", "settle_refunded_by_gateway", "settle_not_refunded_by_gateway")

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(REFUND_PERMISSION))

    @admin.action(description="查询 / 重试原路退款（结果未知的不会重发）", permissions=["retry"])
    def retry_original_refunds(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        pending = list(queryset.filter(status=RefundStatus.PENDING, destination=RefundDestination.ORIGINAL)
                       .values_list("pk", flat=True))
        skipped = queryset.count() - len(pending)
        outcomes = [refund_send_to_gateway(refund_id=refund_id) for refund_id in pending]
        for refund in outcomes:
            if refund.status == RefundStatus.SUCCEEDED:
                self.message_user(request, f"{refund.number}：已原路退款 ¥{refund.amount}", messages.SUCCESS)
            elif refund.status == RefundStatus.FAILED:
                self.message_user(request, f"{refund.number}：通道拒绝退款（{refund.failure_reason}），"
                                           f"¥{refund.amount} 已退回买家钱包", messages.WARNING)
            elif refund.status == RefundStatus.REVIEW:
                self.message_user(request, f"{refund.number}：已转人工核实（{refund.failure_reason}）",
                                  messages.WARNING)
            else:
                reason = f"（{refund.failure_reason}）" if refund.failure_reason else ""
                self.message_user(request, f"{refund.number}：仍在处理中{reason}，系统稍后会自动查询或重试",
                                  messages.INFO)
        if skipped:
            self.message_user(request, f"{skipped} 笔不是处理中的原路退款，已跳过", messages.INFO)

    def _settle(self, request: HttpRequest, queryset: QuerySet[Refund], *, is_refunded_by_gateway: bool) -> None:
        in_review = list(queryset.filter(status=RefundStatus.REVIEW).values_list("pk", flat=True))
        skipped = queryset.count() - len(in_review)
        for refund_id in in_review:
            refund = refund_review_settle(refund_id=refund_id, is_refunded_by_gateway=is_refunded_by_gateway,
                                          staff_id=request.user.pk)
            self.log_change(request, refund, refund.failure_reason)
            if refund.status == RefundStatus.SUCCEEDED:
                self.message_user(request, f"{refund.number}：已确认原路退款 ¥{refund.amount}", messages.SUCCESS)
            else:
                self.message_user(request, f"{refund.number}：已确认通道未退款，¥{refund.amount} 已退回买家钱包",
                                  messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} 笔不是待人工核实的退款，已跳过", messages.INFO)

    @admin.action(description="核实：通道已退款（结束退款单）", permissions=["retry"])
    def settle_refunded_by_gateway(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        self._settle(request, queryset, is_refunded_by_gateway=True)

    @admin.action(description="核实：通道未退款（退回买家钱包）", permissions=["retry"])
    def settle_not_refunded_by_gateway(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        self._settle(request, queryset, is_refunded_by_gateway=False)


# Reasons rows recorded before they were written in Chinese: shown in Chinese too.
LEGACY_REASONS = {
    "already credited": "此前已入账，本次忽略",
    "trade not successful": "交易未成功，未入账",
    "unknown out_trade_no": "商户订单号不存在（unknown out_trade_no）",
}
LEGACY_AMOUNT_REASON = re.compile(r"amount (\S+) ≠ expected (\S+)")


def notification_reason_shown(reason: str) -> str:
    if reason in LEGACY_REASONS:
        return LEGACY_REASONS[reason]
    if reason.startswith("unknown channel "):
        return f"未知通道「{reason.removeprefix('unknown channel ')}」"
    match = LEGACY_AMOUNT_REASON.fullmatch(reason)
    if match:
        return f"金额 {match.group(1)} 与支付单金额 {match.group(2)} 不符"
    return reason


@admin.register(PaymentNotification)
class PaymentNotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "received_at", "channel", "payment", "outcome", "reason_shown", "remote_addr")
    list_filter = ("outcome", "channel", "received_at")
    list_select_related = ("channel", "payment")
    search_fields = ("=payment__number", "reason")
    fields = ("received_at", "channel", "payment", "outcome", "reason_shown", "params", "remote_addr")
    readonly_fields = fields

    @admin.display(description="原因", ordering="reason")
    def reason_shown(self, obj: PaymentNotification) -> str:
        return notification_reason_shown(obj.reason)


# The orders app's page with payments and refunds added; registered here because orders are below payments.
admin.site.register(Order, OrderPaymentsAdmin)
from kameng.payments import aml_admin  # noqa: E402, F401  (the AML review queue)
