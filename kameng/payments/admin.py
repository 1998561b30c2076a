"""Back office for payments: channel setup (the merchant key is write-only), payments and every notification."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.widgets import UnfoldAdminPasswordWidget

from kameng.payments.models import Payment, PaymentChannel, PaymentNotification


def notify_url_of(channel: PaymentChannel) -> str:
    return f"{settings.SITE_URL}/pay/notify/{channel.code}/"


def _formfield(db_field: Any, **kwargs: Any) -> Any:
    if db_field.name == "gateway_url":
        kwargs["assume_scheme"] = "https"  # gateways are reached over HTTPS; a bare host means https://
    return db_field.formfield(**kwargs)


class PaymentChannelForm(forms.ModelForm):
    """The merchant key can be set or replaced but never read back: a blank input keeps the stored key."""

    merchant_key = forms.CharField(
        label="商户密钥", required=False, strip=True,
        widget=UnfoldAdminPasswordWidget(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="只写字段：已保存的密钥不会显示；留空则保留原密钥，填写则替换。",
    )

    class Meta:
        model = PaymentChannel
        fields = ("code", "name", "kind", "is_enabled", "gateway_url", "merchant_id", "merchant_key", "pay_type",
                  "min_amount", "max_amount", "sort_order")
        formfield_callback = _formfield

    def clean_merchant_key(self) -> str:
        value: str = self.cleaned_data.get("merchant_key") or ""
        if value:
            return value
        if self.instance.pk is None:
            raise forms.ValidationError("新建通道时必须填写商户密钥")
        # Keep what is stored (the field decrypts it on load; it is re-encrypted on save, never rendered).
        return str(self.instance.merchant_key)


@admin.register(PaymentChannel)
class PaymentChannelAdmin(ModelAdmin):
    form = PaymentChannelForm
    list_display = ("name", "code", "kind", "is_enabled", "merchant_id", "min_amount", "max_amount", "sort_order")
    list_filter = ("kind", "is_enabled")
    search_fields = ("name", "code", "merchant_id")
    readonly_fields = ("notify_url",)
    fieldsets = (
        (None, {"fields": ("name", "code", "kind", "is_enabled", "sort_order")}),
        ("网关", {"fields": ("gateway_url", "merchant_id", "merchant_key", "pay_type", "notify_url")}),
        ("金额限制", {"fields": ("min_amount", "max_amount")}),
    )

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "gateway_url":
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @display(description="异步通知地址")
    def notify_url(self, obj: PaymentChannel) -> str:
        return notify_url_of(obj) if obj.pk and obj.code else "保存后生成"


class ReadOnlyAdmin(ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("number", "user", "channel", "purpose", "amount", "status", "gateway_trade_no", "created_at",
                    "paid_at")
    list_filter = ("status", "purpose", "channel", "created_at")
    list_select_related = ("user", "channel")
    search_fields = ("=number", "=gateway_trade_no", "user__username")
    fields = ("number", "user", "channel", "purpose", "amount", "status", "gateway_trade_no", "created_at",
              "paid_at")
    readonly_fields = fields


@admin.register(PaymentNotification)
class PaymentNotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "received_at", "channel", "payment", "outcome", "reason", "remote_addr")
    list_filter = ("outcome", "channel", "received_at")
    list_select_related = ("channel", "payment")
    search_fields = ("=payment__number", "reason")
    fields = ("received_at", "channel", "payment", "outcome", "reason", "params", "remote_addr")
    readonly_fields = fields
