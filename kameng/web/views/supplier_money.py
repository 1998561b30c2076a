"""The supplier console's money pages (供货商后台 · 结算与提现): monthly statements with CSV/XLSX downloads, and
withdrawals (request form, history, one withdrawal's page). Every query is scoped to `request.supplier`; another
supplier's withdrawal, or a month that is not a month, answers 404."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from django import forms
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from kameng.core.device import risk_device_id
from kameng.core.errors import ApplicationError
from kameng.core.http import client_address
from kameng.core.masking import mask_person_name
from kameng.core.money import MoneyError, parse_amount
from kameng.suppliers.exports import Cell, table_csv, table_xlsx
from kameng.suppliers.models import SupplierWithdrawal
from kameng.suppliers.statements import (
    supplier_monthly_statement,
    supplier_statement_lines,
    supplier_statement_months,
)
from kameng.suppliers.withdrawals import (
    mask_bank_account,
    supplier_balances,
    supplier_withdrawal_request,
    withdrawable_amount,
    withdrawal_minimum,
)
from kameng.web.errors import message_for, status_for
from kameng.web.forms import new_request_id
from kameng.web.views.supplier_console import (
    SUPPLIER_CONSOLE_NAV,
    SupplierRequest,
    console_render,
    supplier_required,
)

SUPPLIER_CONSOLE_NAV.extend([
    ("web:supplier_statements", _("对账单")),
    ("web:supplier_withdrawals", _("提现")),
])

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
WITHDRAWAL_HISTORY_ROWS = 50


def _month(text: str) -> date:
    match = MONTH_RE.match(text)
    if match is None:
        raise Http404("月份格式不对")
    return date(int(match.group(1)), int(match.group(2)), 1)


@require_GET
@supplier_required
def supplier_statements(request: SupplierRequest) -> HttpResponse:
    months = supplier_statement_months(supplier=request.supplier)
    statements = [supplier_monthly_statement(supplier=request.supplier, month=month) for month in months]
    return console_render(request, "web/supplier/statements.html", {"statements": statements})


def _statement_table(request: SupplierRequest, month: date) -> list[list[Cell]]:
    statement = supplier_monthly_statement(supplier=request.supplier, month=month)
    lines = supplier_statement_lines(supplier=request.supplier, month=month)
    table: list[list[Cell]] = [
        [str(_("供货商")), request.supplier.name, str(_("月份")), f"{month:%Y-%m}"],
        [str(_("期初应付")), statement.opening_payable, str(_("期末应付")), statement.closing_payable],
        [str(_("交付订单")), statement.orders_delivered, str(_("结算成本")), statement.gross_cost],
        [str(_("代扣税费")), statement.tax_withheld, str(_("退款冲回")), statement.reversed_cost],
        [str(_("冲回税费")), statement.reversed_tax, str(_("净额")), statement.net],
        [str(_("提现")), statement.withdrawals, str(_("期末欠款")), statement.closing_debt],
        [],
        [str(_("时间")), str(_("类型")), str(_("单号")), str(_("成本")), str(_("税费")), str(_("应付变动")),
         str(_("欠款变动"))],
    ]
    table.extend([f"{line.at.astimezone():%Y-%m-%d %H:%M:%S}", str(_(line.kind)), line.reference, line.cost,
                  line.tax, line.payable, line.debt] for line in lines)
    return table


@require_GET
@supplier_required
def supplier_statement_download(request: SupplierRequest, month: str, file_format: str) -> HttpResponse:
    day = _month(month)
    table = _statement_table(request, day)
    if file_format == "xlsx":
        response = HttpResponse(table_xlsx(table, sheet=month),
                                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    elif file_format == "csv":
        response = HttpResponse(table_csv(table), content_type="text/csv; charset=utf-8")
    else:
        raise Http404("格式不支持")
    response["Content-Disposition"] = f'attachment; filename="statement-{month}.{file_format}"'
    return response


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


def _withdrawals_context(request: SupplierRequest, form: WithdrawalForm | None = None) -> dict[str, Any]:
    payable, debt = supplier_balances(owner_id=request.supplier.owner_id)
    history = SupplierWithdrawal.objects.filter(supplier=request.supplier)[:WITHDRAWAL_HISTORY_ROWS]
    return {
        "payable": payable, "debt": debt,
        "withdrawable": withdrawable_amount(owner_id=request.supplier.owner_id),
        "minimum": withdrawal_minimum(),
        "form": form or WithdrawalForm(initial={"request_id": new_request_id()}),
        "history": [(withdrawal, mask_bank_account(str(withdrawal.account_number or ""))) for withdrawal in history],
    }


@require_http_methods(["GET", "POST"])
@supplier_required
def supplier_withdrawals(request: SupplierRequest) -> HttpResponse:
    if request.method == "GET":
        return console_render(request, "web/supplier/withdrawals.html", _withdrawals_context(request))
    form = WithdrawalForm(request.POST)
    if not form.is_valid():
        return console_render(request, "web/supplier/withdrawals.html", _withdrawals_context(request, form),
                              status=400)
    data = form.cleaned_data
    try:
        try:
            amount = parse_amount(data["amount"])
        except MoneyError as error:
            raise ApplicationError(error.template, code="invalid_amount", params=error.params) from error
        withdrawal = supplier_withdrawal_request(
            supplier_id=request.supplier.pk, amount=amount, bank_name=data["bank_name"],
            account_name=data["account_name"], account_number=data["account_number"], request_id=data["request_id"],
            user_id=request.user.pk, client_ip=client_address(request), device_id=risk_device_id(request))
    except ApplicationError as error:
        context = {**_withdrawals_context(request, form), "error_message": message_for(error),
                   "error_code": error.code}
        return console_render(request, "web/supplier/withdrawals.html", context, status=status_for(error))
    return redirect("web:supplier_withdrawal", number=withdrawal.number)


@require_GET
@supplier_required
def supplier_withdrawal(request: SupplierRequest, number: str) -> HttpResponse:
    withdrawal = SupplierWithdrawal.objects.filter(supplier=request.supplier, number=number).first()
    if withdrawal is None:
        raise Http404("提现申请不存在")
    return console_render(request, "web/supplier/withdrawal.html", {
        "withdrawal": withdrawal, "masked_account": mask_bank_account(str(withdrawal.account_number or "")),
        "masked_account_name": mask_person_name(str(withdrawal.account_name or ""))})
