"""The reseller console's money pages (代理后台 · 推广 / 利润 / 提现): the invite link and the commissions it
earned, the sub-site margins, and the commission balance with its withdrawals and 转入余额. Every query is scoped
to `request.reseller` (and its user); another reseller's withdrawal answers 404. Approved resellers only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kameng.core.device import risk_device_id
from kameng.core.errors import ApplicationError
from kameng.core.http import client_address
from kameng.core.masking import mask_person_name
from kameng.core.money import MoneyError, parse_amount
from kameng.resellers.commission_withdrawals import (
    commission_balance,
    commission_to_wallet,
    commission_withdrawal_minimum,
    commission_withdrawal_request,
    mask_bank_account,
)
from kameng.resellers.earnings_models import CommissionSettings
from kameng.resellers.earnings_selectors import (
    earnings_recent,
    earnings_totals,
    invitees_count,
    mask_order_number,
    withdrawals_recent,
)
from kameng.resellers.models import EarningKind, ResellerWithdrawal
from kameng.resellers.referrals import invite_code_of
from kameng.web.errors import message_for, status_for
from kameng.web.forms import new_request_id
from kameng.web.views.reseller_console import (
    RESELLER_CONSOLE_NAV,
    ResellerRequest,
    console_render,
    reseller_required,
)

RESELLER_CONSOLE_NAV.extend([
    ("web:reseller_promotion", _("推广")),
    ("web:reseller_margins", _("利润")),
    ("web:reseller_withdrawals", _("提现")),
])


def _rows(earnings: list[Any]) -> list[dict[str, Any]]:
    return [{"earning": earning, "order_number": mask_order_number(earning.order.number),
             "net": earning.amount - earning.reversed_amount} for earning in earnings]


@require_GET
@reseller_required(active=True)
def reseller_promotion(request: ResellerRequest) -> HttpResponse:
    user_id = request.reseller.user_id
    code = invite_code_of(user_id=user_id)
    return console_render(request, "web/reseller/promotion.html", {
        "invite_code": code,
        "invite_link": request.build_absolute_uri(reverse("web:home")) + f"?aff={code}",
        "invitees": invitees_count(user_id=user_id),
        "aff_days": settings.KAMENG_AFF_COOKIE_DAYS,
        "rates": [(level, rate) for level, rate in enumerate(CommissionSettings.current().rates(), start=1)
                  if rate > 0],
        "totals": earnings_totals(user_id=user_id, kind=EarningKind.COMMISSION),
        "rows": _rows(earnings_recent(user_id=user_id, kind=EarningKind.COMMISSION)),
    })


@require_GET
@reseller_required(active=True)
def reseller_margins(request: ResellerRequest) -> HttpResponse:
    user_id = request.reseller.user_id
    return console_render(request, "web/reseller/margins.html", {
        "totals": earnings_totals(user_id=user_id, kind=EarningKind.MARGIN),
        "rows": _rows(earnings_recent(user_id=user_id, kind=EarningKind.MARGIN)),
    })


class WithdrawalForm(forms.Form):
    amount = forms.CharField(label=_("提现金额（元）"), max_length=14,
                             error_messages={"required": _("请输入有效的金额"), "max_length": _("请输入有效的金额")},
                             widget=forms.TextInput(attrs={"inputmode": "decimal",
                                                           "data-testid": "withdrawal-amount"}))
    bank_name = forms.CharField(label=_("开户银行"), max_length=100,
                                error_messages={"required": _("请填写开户银行和户名")})
    account_name = forms.CharField(label=_("户名"), max_length=100,
                                   error_messages={"required": _("请填写开户银行和户名")})
    account_number = forms.CharField(label=_("银行账号"), max_length=40,
                                     error_messages={"required": _("银行账号应为 8–30 位数字")},
                                     widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}))
    request_id = forms.CharField(max_length=64, widget=forms.HiddenInput)


class ToWalletForm(forms.Form):
    amount = forms.CharField(label=_("转入金额（元）"), max_length=14,
                             error_messages={"required": _("请输入有效的金额"), "max_length": _("请输入有效的金额")},
                             widget=forms.TextInput(attrs={"inputmode": "decimal", "data-testid": "to-wallet-amount"}))
    request_id = forms.CharField(max_length=64, widget=forms.HiddenInput)


def _context(request: ResellerRequest, form: WithdrawalForm | None = None,
             wallet_form: ToWalletForm | None = None) -> dict[str, Any]:
    history = withdrawals_recent(reseller_id=request.reseller.pk)
    return {
        "balance": commission_balance(user_id=request.reseller.user_id),
        "minimum": commission_withdrawal_minimum(),
        "form": form or WithdrawalForm(initial={"request_id": new_request_id()}),
        "wallet_form": wallet_form or ToWalletForm(initial={"request_id": new_request_id()}),
        "history": [(withdrawal, mask_bank_account(str(withdrawal.account_number or ""))
                     if withdrawal.account_number else "") for withdrawal in history],
    }


def _amount(text: str) -> Any:
    try:
        return parse_amount(text)
    except MoneyError as error:
        raise ApplicationError(error.template, code="invalid_amount", params=error.params) from error


def _refused(request: ResellerRequest, context: dict[str, Any], error: ApplicationError) -> HttpResponse:
    return console_render(request, "web/reseller/withdrawals.html",
                          {**context, "error_message": message_for(error), "error_code": error.code},
                          status=status_for(error))


@require_http_methods(["GET", "POST"])
@reseller_required(active=True)
def reseller_withdrawals(request: ResellerRequest) -> HttpResponse:
    if request.method == "GET":
        return console_render(request, "web/reseller/withdrawals.html", _context(request))
    form = WithdrawalForm(request.POST)
    if not form.is_valid():
        return console_render(request, "web/reseller/withdrawals.html", _context(request, form), status=400)
    data = form.cleaned_data
    try:
        withdrawal = commission_withdrawal_request(
            reseller_id=request.reseller.pk, amount=_amount(data["amount"]), bank_name=data["bank_name"],
            account_name=data["account_name"], account_number=data["account_number"], request_id=data["request_id"],
            user_id=request.user.pk, client_ip=client_address(request), device_id=risk_device_id(request))
    except ApplicationError as error:
        return _refused(request, _context(request, form), error)
    return redirect("web:reseller_withdrawal", number=withdrawal.number)


@require_POST
@reseller_required(active=True)
def reseller_commission_to_wallet(request: ResellerRequest) -> HttpResponse:
    form = ToWalletForm(request.POST)
    if not form.is_valid():
        return console_render(request, "web/reseller/withdrawals.html", _context(request, wallet_form=form),
                              status=400)
    try:
        withdrawal = commission_to_wallet(reseller_id=request.reseller.pk, amount=_amount(form.cleaned_data["amount"]),
                                          request_id=form.cleaned_data["request_id"])
    except ApplicationError as error:
        return _refused(request, _context(request, wallet_form=form), error)
    return redirect("web:reseller_withdrawal", number=withdrawal.number)


@require_GET
@reseller_required(active=True)
def reseller_withdrawal(request: ResellerRequest, number: str) -> HttpResponse:
    withdrawal = ResellerWithdrawal.objects.filter(reseller=request.reseller, number=number).first()
    if withdrawal is None:
        raise Http404("提现记录不存在")
    return console_render(request, "web/reseller/withdrawal.html", {
        "withdrawal": withdrawal,
        "masked_account": mask_bank_account(str(withdrawal.account_number)) if withdrawal.account_number else "",
        "masked_account_name": mask_person_name(str(withdrawal.account_name)) if withdrawal.account_name else ""})
