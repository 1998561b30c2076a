"""The back office's 2FA pages (/admin/otp/): enrol an authenticator (QR code + secret, confirm with a code, recovery
codes shown once) and enter a code after the password. The rules are in kameng/accounts/staff_otp.py; the door that
sends staff here is kameng/accounts/staff_middleware.py."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from unfold.widgets import UnfoldAdminTextInputWidget

from kameng.accounts.staff_otp import (
    staff_code_check,
    staff_has_device,
    staff_session_verified,
    staff_verified_device,
    totp_device_confirm,
    totp_device_pending,
    totp_qr_svg,
    totp_secret_base32,
)


class CodeForm(forms.Form):
    code = forms.CharField(label="验证码", max_length=20, widget=UnfoldAdminTextInputWidget(attrs={
        "autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}),
        help_text="身份验证器上的 6 位数字；手机不在身边时，输入一个恢复码（每个只能用一次）")


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return reverse("admin:index")


def _staff_or_login(request: HttpRequest) -> HttpResponse | None:
    if request.user.is_authenticated and request.user.is_staff:
        return None
    return HttpResponseRedirect(f"{reverse('admin:login')}?{urlencode({'next': _next_url(request)})}")


def _page(request: HttpRequest, template: str, context: dict[str, object]) -> TemplateResponse:
    return TemplateResponse(request, template, {**admin.site.each_context(request), "next": _next_url(request),
                                                **context})


@never_cache
@csrf_protect
def staff_otp_verify(request: HttpRequest) -> HttpResponse:
    refused = _staff_or_login(request)
    if refused is not None:
        return refused
    if staff_verified_device(request) is not None:  # verified already (a reload, the back button): go on
        return HttpResponseRedirect(_next_url(request))
    if not staff_has_device(request.user):
        return HttpResponseRedirect(f"{reverse('staff_otp:enrol')}?{urlencode({'next': _next_url(request)})}")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        check = staff_code_check(request=request, user=request.user, code=form.cleaned_data["code"])
        if check.device is not None:
            staff_session_verified(request=request, device=check.device)
            return HttpResponseRedirect(_next_url(request))
        form.add_error("code", check.error)
    return _page(request, "admin/staff_otp/verify.html", {"title": "两步验证", "form": form})


@never_cache
@csrf_protect
def staff_otp_enrol(request: HttpRequest) -> HttpResponse:
    refused = _staff_or_login(request)
    if refused is not None:
        return refused
    if staff_has_device(request.user):
        return HttpResponseRedirect(f"{reverse('staff_otp:verify')}?{urlencode({'next': _next_url(request)})}")
    device = totp_device_pending(user=request.user)
    form = CodeForm(request.POST or None)
    form.fields["code"].help_text = "用身份验证器扫描二维码（或手动输入密钥）后，输入它显示的 6 位数字"
    if request.method == "POST" and form.is_valid():
        codes, error = totp_device_confirm(request=request, device=device, code=form.cleaned_data["code"])
        if codes:
            return _page(request, "admin/staff_otp/recovery_codes.html",
                         {"title": "保存恢复码", "codes": codes})
        form.add_error("code", error)
    return _page(request, "admin/staff_otp/enrol.html", {
        "title": "设置两步验证", "form": form, "qr": totp_qr_svg(device), "secret": totp_secret_base32(device),
    })
