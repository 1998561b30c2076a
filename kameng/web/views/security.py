"""支付设置 (the buyer's payment security page): set or change the payment PIN, set the password-free (免密) limit,
see whether the PIN is locked. The rules are kameng.accounts.paypin's."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from kameng.accounts.paypin import (
    effective_password_free_limit,
    password_free_cap,
    password_free_limit_set,
    payment_pin_set,
    pin_locked_until,
)
from kameng.core.errors import ApplicationError
from kameng.core.money import format_money
from kameng.web.errors import rejected
from kameng.web.forms import PasswordFreeLimitForm, PaymentPinForm
from kameng.web.http import BuyerRequest


def _context(request: BuyerRequest, *, pin_form: PaymentPinForm | None = None,
             limit_form: PasswordFreeLimitForm | None = None) -> dict[str, object]:
    user = request.user
    has_pin = bool(user.payment_pin)
    locked_until = pin_locked_until(user)
    return {
        "page_url": reverse("web:security"),
        "has_pin": has_pin,
        "locked_until": timezone.localtime(locked_until) if locked_until is not None else None,
        "password_free_limit": effective_password_free_limit(user.password_free_limit),
        "password_free_cap": password_free_cap(),
        "pin_form": pin_form or PaymentPinForm(has_pin=has_pin, has_password=user.has_usable_password()),
        "limit_form": limit_form or PasswordFreeLimitForm(initial={"limit": user.password_free_limit}),
        "fresh_login_minutes": settings.KAMENG_PAYMENT_PIN_FRESH_LOGIN_SECONDS // 60,
    }


@require_GET
@never_cache
@login_required
def security(request: BuyerRequest) -> HttpResponse:
    return render(request, "web/security.html", _context(request))


@sensitive_post_parameters("password", "old_pin", "new_pin", "new_pin_again")
@require_http_methods(["GET", "POST"])
@login_required
def security_pin(request: BuyerRequest) -> HttpResponse:
    if request.method == "GET":
        return redirect("web:security")
    user = request.user
    has_pin = bool(user.payment_pin)
    form = PaymentPinForm(request.POST, has_pin=has_pin, has_password=user.has_usable_password())
    if not form.is_valid():
        return render(request, "web/security.html", _context(request, pin_form=form), status=400)
    try:
        payment_pin_set(user_id=user.pk, new_pin=form.cleaned_data["new_pin"],
                        password=form.cleaned_data.get("password", ""), old_pin=form.cleaned_data.get("old_pin", ""),
                        logged_in_at=user.last_login)
    except ApplicationError as error:
        user.refresh_from_db()
        return rejected(request, "web/security.html", _context(request, pin_form=form), error)
    messages.success(request, _("支付密码已修改") if has_pin else _("支付密码已设置"))
    return redirect("web:security")


@sensitive_post_parameters("pin")
@require_http_methods(["GET", "POST"])
@login_required
def security_limit(request: BuyerRequest) -> HttpResponse:
    if request.method == "GET":
        return redirect("web:security")
    form = PasswordFreeLimitForm(request.POST)
    if not form.is_valid():
        return render(request, "web/security.html", _context(request, limit_form=form), status=400)
    try:
        limit = password_free_limit_set(user_id=request.user.pk, limit_text=form.cleaned_data["limit"],
                                        pin=form.cleaned_data["pin"])
    except ApplicationError as error:
        request.user.refresh_from_db()
        return rejected(request, "web/security.html", _context(request, limit_form=form), error)
    if limit:
        messages.success(request, _("免密支付已开通：%(limit)s 以内的钱包支付无需输入支付密码")
                         % {"limit": format_money(limit)})
    else:
        messages.success(request, _("免密支付已关闭：每笔钱包支付都需要输入支付密码"))
    return redirect("web:security")
