"""Storefront forms: they check the shape of the input; the services check the rules."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from kameng.accounts.forms import RealNameAutofillMixin, ThrottledLoginMixin
from kameng.accounts.validators import PASSWORD_MIN_LENGTH
from kameng.catalog.models import Product
from kameng.catalog.pricing import POINTS_INPUT_MAX
from kameng.orders.services import QUANTITY_INPUT_MAX


def new_request_id() -> str:
    """One per rendered buy form: submitting the same form twice returns the same order."""
    return uuid.uuid4().hex


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = _("用户名或手机号")
        self.fields["username"].error_messages["required"] = _("请输入用户名或手机号")
        self.fields["username"].widget.attrs.update({"data-testid": "login-username", "autocomplete": "username"})
        self.fields["password"].label = _("密码")
        self.fields["password"].error_messages["required"] = _("请输入密码")
        self.fields["password"].widget.attrs.update({"data-testid": "login-password"})
        self.error_messages["invalid_login"] = _("用户名/手机号或密码不正确")


def _password_help_text() -> str:
    return gettext("至少 %(min_length)d 个字符，不能全是数字") % {"min_length": PASSWORD_MIN_LENGTH}


PASSWORD_HELP_TEXT = lazy(_password_help_text, str)()  # translated when shown, in the visitor's language


class RegisterForm(forms.Form):
    login = forms.CharField(label=_("用户名或手机号"), max_length=30,
                            help_text=_("字母开头的用户名，或 11 位手机号"),
                            error_messages={"required": _("请输入用户名或手机号"),
                                            "max_length": _("用户名最多 %(limit_value)d 个字符")},
                            widget=forms.TextInput(attrs={"data-testid": "register-login",
                                                          "autocomplete": "username"}))
    # The length is the password validators' rule too (kameng.accounts.validators): checked here first so that a
    # short password is said next to its field.
    password = forms.CharField(label=_("密码"), min_length=PASSWORD_MIN_LENGTH, strip=False,
                               help_text=PASSWORD_HELP_TEXT,
                               error_messages={"required": _("请输入密码"),
                                               "min_length": _("密码至少需要 %(limit_value)d 个字符")},
                               widget=forms.PasswordInput(attrs={"data-testid": "register-password",
                                                                 "autocomplete": "new-password"}))
    password_again = forms.CharField(label=_("确认密码"), strip=False,
                                     error_messages={"required": _("请再次输入密码")},
                                     widget=forms.PasswordInput(attrs={"data-testid": "register-password-again",
                                                                       "autocomplete": "new-password"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") and data.get("password_again") and data["password"] != data["password_again"]:
            self.add_error("password_again", _("两次输入的密码不一致"))
        return data


def buy_quantity_range(product: Product) -> tuple[int, int]:
    """The quantities one order of the product may take: its own bounds, capped by KAMENG_MAX_ORDER_QUANTITY (the
    purchase service checks the same bounds again)."""
    return product.min_quantity, min(product.max_quantity, settings.KAMENG_MAX_ORDER_QUANTITY)


class BuyForm(forms.Form):
    sku = forms.TypedChoiceField(label=_("规格"), coerce=int, widget=forms.RadioSelect)
    # No bounds on the field itself: its stock "≤ 10000" would contradict the "每单 1–20 件" printed under it.
    # clean_quantity says the product's real bounds.
    quantity = forms.IntegerField(label=_("数量"), initial=1,
                                  widget=forms.NumberInput(attrs={"data-testid": "buy-quantity",
                                                                 "inputmode": "numeric"}))
    request_id = forms.CharField(max_length=64, required=False, widget=forms.HiddenInput)
    # "balance" (the wallet) or a channel code; which channels exist and take the amount is the view's check.
    payment_method = forms.SlugField(label=_("支付方式"), max_length=40, required=False)
    # Points to offset cash with (积分抵扣): the price function caps them; paid from the wallet only.
    points = forms.IntegerField(label=_("使用积分抵扣"), min_value=0, max_value=POINTS_INPUT_MAX, required=False,
                                widget=forms.NumberInput(attrs={"data-testid": "buy-points", "inputmode": "numeric"}))

    def __init__(self, *args: Any, sku_choices: list[tuple[int, str]],
                 quantity_range: tuple[int, int] = (1, QUANTITY_INPUT_MAX), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sku"].choices = sku_choices  # type: ignore[attr-defined]
        self.quantity_range = quantity_range
        low, high = quantity_range
        # The browser stops a quantity out of bounds before it is sent; clean_quantity checks it again.
        self.fields["quantity"].widget.attrs.update(min=low, max=high)

    def clean_quantity(self) -> int:
        quantity: int = self.cleaned_data["quantity"]
        low, high = self.quantity_range
        if not low <= quantity <= high:
            raise forms.ValidationError(_("购买数量需在 %(low)s–%(high)s 之间（每单 %(low)s–%(high)s 件）"),
                                        code="quantity_out_of_range", params={"low": low, "high": high})
        return quantity


class TopupForm(forms.Form):
    amount = forms.CharField(label=_("充值金额（元）"), max_length=12,
                             error_messages={"required": _("请输入有效的金额"), "max_length": _("请输入有效的金额")},
                             widget=forms.TextInput(attrs={"inputmode": "decimal", "data-testid": "topup-amount",
                                                           "placeholder": "100.00"}))
    channel = forms.ChoiceField(label=_("支付方式"), widget=forms.RadioSelect)
    # The order the buyer came from ("去充值" on an unpaid order): the finished top-up leads back to it.
    for_order = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)

    def __init__(self, *args: Any, channel_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = channel_choices  # type: ignore[attr-defined]
        if channel_choices:
            self.fields["channel"].initial = channel_choices[0][0]


class NoticeEmailForm(forms.Form):
    # A CharField, not an EmailField: the service (kameng.notices.services.email_normalize) is the one check, and
    # its message is the one the buyer reads.
    email = forms.CharField(label=_("通知邮箱"), max_length=254,
                            error_messages={"required": _("请输入有效的邮箱地址"),
                                            "max_length": _("请输入有效的邮箱地址")},
                            widget=forms.EmailInput(attrs={"data-testid": "email-input", "autocomplete": "email",
                                                           "placeholder": "name@example.com"}))


def _pin_input(testid: str) -> forms.PasswordInput:
    return forms.PasswordInput(attrs={"inputmode": "numeric", "maxlength": 6, "autocomplete": "off",
                                      "data-testid": testid})


class PaymentPinForm(forms.Form):
    """Set the first payment PIN (with the login password, if the account has one) or change it (old PIN)."""

    password = forms.CharField(label=_("登录密码"), strip=False, required=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password",
                                                                 "data-testid": "security-password"}))
    old_pin = forms.CharField(label=_("原支付密码"), required=False, max_length=32,
                              widget=_pin_input("security-old-pin"))
    new_pin = forms.CharField(label=_("新支付密码"), max_length=32,
                              help_text=_("6 位数字，不能是 123456、111111 这类简单组合"),
                              error_messages={"required": _("请输入 6 位支付密码")},
                              widget=_pin_input("security-new-pin"))
    new_pin_again = forms.CharField(label=_("确认支付密码"), max_length=32,
                                    error_messages={"required": _("请再次输入支付密码")},
                                    widget=_pin_input("security-new-pin-again"))

    def __init__(self, *args: Any, has_pin: bool, has_password: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if has_pin:
            del self.fields["password"]
            self.fields["old_pin"].required = True
            self.fields["old_pin"].error_messages["required"] = _("请输入原支付密码")
        else:
            del self.fields["old_pin"]
            if has_password:
                self.fields["password"].required = True
                self.fields["password"].error_messages["required"] = _("请输入登录密码")
            else:
                del self.fields["password"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("new_pin") and data.get("new_pin_again") and data["new_pin"] != data["new_pin_again"]:
            self.add_error("new_pin_again", _("两次输入的支付密码不一致"))
        return data


class PasswordFreeLimitForm(forms.Form):
    limit = forms.CharField(label=_("免密支付额度（元）"), max_length=12,
                            help_text=_("填 0 关闭免密支付"),
                            error_messages={"required": _("请输入有效的金额"), "max_length": _("请输入有效的金额")},
                            widget=forms.TextInput(attrs={"inputmode": "decimal", "data-testid": "security-limit"}))
    pin = forms.CharField(label=_("支付密码"), required=False, max_length=32,
                          help_text=_("提高额度时需要"), widget=_pin_input("security-limit-pin"))


class RealNameForm(forms.Form):
    """实名认证: the name and the 18-character ID number; kameng.accounts.services.realname_verify checks them."""

    name = forms.CharField(label=_("真实姓名"), max_length=40, help_text=_("与身份证上的姓名一致"),
                           error_messages={"required": _("请输入真实姓名"),
                                           "max_length": _("姓名最多 %(limit_value)d 个字符")},
                           widget=forms.TextInput(attrs={"data-testid": "realname-name", "autocomplete": "name"}))
    id_number = forms.CharField(label=_("身份证号码"), max_length=30,
                                help_text=_("18 位第二代居民身份证号码，末位可能是 X"),
                                error_messages={"required": _("请输入身份证号码"),
                                                "max_length": _("身份证号码应为 18 位")},
                                widget=forms.TextInput(attrs={"data-testid": "realname-id-number",
                                                              "autocomplete": "off", "spellcheck": "false"}))


class RealNameAutofillPreviewForm(RealNameAutofillMixin, forms.Form):
    """What a form that needs the real name looks like once it is verified: filled in and locked."""

    real_name = forms.CharField(label=_("真实姓名"), required=False,
                                help_text=_("需要填写真实姓名的表单（如人工发货商品）将自动填入"),
                                widget=forms.TextInput(attrs={"data-testid": "realname-autofill"}))


class PhoneLoginForm(forms.Form):
    """The 短信登录 tab: a number and the code sent to it (the shape only; kameng.accounts.phone_login checks)."""

    phone = forms.CharField(label=_("手机号"), max_length=11, min_length=11,
                            error_messages={"required": _("请输入手机号"),
                                            "min_length": _("手机号格式不正确（11 位中国大陆手机号）"),
                                            "max_length": _("手机号格式不正确（11 位中国大陆手机号）")},
                            widget=forms.TextInput(attrs={"data-testid": "sms-phone", "autocomplete": "tel",
                                                          "inputmode": "numeric", "placeholder": "13800000000"}))
    code = forms.CharField(label=_("验证码"), max_length=6, required=False,
                           widget=forms.TextInput(attrs={"data-testid": "sms-code", "inputmode": "numeric",
                                                         "autocomplete": "one-time-code", "placeholder": "123456"}))

    def __init__(self, *args: Any, code_required: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if code_required:
            self.fields["code"].required = True
            self.fields["code"].error_messages["required"] = _("请输入 6 位数字验证码")


TOPUP_PREFIX = "topup_"


class TopupTargetForm(forms.Form):
    """The fields of a direct top-up product's form (kameng.catalog.topup_forms), named `topup_<name>` beside the
    buy form's own. It only carries the values: the purchase service checks them and says which field is wrong
    (`add_service_error`), so the message is the same on the page and in the API. The browser checks `required`
    and the phone shape first, when it can."""

    def __init__(self, *args: Any, topup_form: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.topup_form = topup_form
        for spec in topup_form:
            self.fields[TOPUP_PREFIX + spec["name"]] = _topup_field(spec)

    def buyer_input(self) -> dict[str, str]:
        """What the buyer typed, by the form's names (unchecked: the purchase service checks)."""
        return {spec["name"]: str(self.data.get(TOPUP_PREFIX + spec["name"], ""))[:200] for spec in self.topup_form}

    def add_service_error(self, *, field: str, message: str) -> None:
        name = TOPUP_PREFIX + field
        self.add_error(name if name in self.fields else None, message)


def _topup_field(spec: dict[str, Any]) -> forms.Field:
    attrs: dict[str, Any] = {"data-testid": f"topup-{spec['name']}"}
    if spec["required"]:
        attrs["required"] = True
    if spec["kind"] == "select":
        choices = [("", gettext("请选择")), *[(option, option) for option in spec["options"]]]
        return forms.ChoiceField(label=spec["label"], required=False, choices=choices,
                                 widget=forms.Select(attrs=attrs))
    if spec["kind"] == "phone":
        attrs.update({"inputmode": "numeric", "autocomplete": "tel", "maxlength": 20, "placeholder": "13800000000"})
        return forms.CharField(label=spec["label"], required=False, widget=forms.TextInput(attrs=attrs))
    attrs.update({"maxlength": spec.get("max_length", 100), "autocomplete": "off", "spellcheck": "false"})
    return forms.CharField(label=spec["label"], required=False, widget=forms.TextInput(attrs=attrs))


class AfterSalesForm(forms.Form):
    """售后申请: the shape only (kameng.after_sales.services checks the rules and says why in the buyer's words)."""

    reason = forms.ChoiceField(label=_("售后原因"), widget=forms.RadioSelect, choices=[
        ("key_invalid", _("卡密无效")), ("key_used", _("卡密已被使用")), ("not_credited", _("充值未到账")),
        ("other", _("其他"))], error_messages={"required": _("请选择售后原因"),
                                                "invalid_choice": _("请选择售后原因")})
    note = forms.CharField(label=_("补充说明"), required=False, max_length=500,
                           help_text=_("最多 500 字，例如卡密的错误提示、充值账号、截图说明"),
                           error_messages={"max_length": _("补充说明最多 500 个字")},
                           widget=forms.Textarea(attrs={"rows": 4, "maxlength": 500,
                                                        "data-testid": "after-sales-note"}))
