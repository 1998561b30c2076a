"""HTTP face of the simulated 易支付 V2 gateway: api/pay/create|query|refund|refundquery and its cashier page.

Thin: each view turns the request into a parameter dict, calls one service or selector, and answers the way the
protocol does — signed JSON with `code=0` on success, unsigned `{"code": -1, "msg": …}` on an error, HTML pages
for the buyer. The cashier reuses the V1 simulator's templates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from kameng.core.errors import ApplicationError
from kameng.simulators.epay_cashier import cancelled_page, error_page, paid_page, request_params
from kameng.simulators.epay_v2.models import SimulatedEpayV2Trade
from kameng.simulators.epay_v2.selectors import (
    EpayV2SimulatorError,
    simulated_epay_v2_refund_of_merchant,
    simulated_epay_v2_trade_by_number,
    simulated_epay_v2_trade_of_merchant,
)
from kameng.simulators.epay_v2.services import (
    authenticated_merchant,
    signed_reply,
    simulated_epay_v2_refund,
    simulated_epay_v2_return_url,
    simulated_epay_v2_trade_create,
    simulated_epay_v2_trade_pay,
)

PAY_TYPE_LABELS = {"alipay": "支付宝", "wxpay": "微信支付", "qqpay": "QQ 钱包", "bank": "网银", "jdpay": "京东支付"}
QR_METHODS = frozenset({"scan"})


def _json_api(handler: Callable[[HttpRequest, dict[str, str]], dict[str, Any]]) -> Callable[..., JsonResponse]:
    """Server-to-server endpoint: authenticated by the signature, errors as `{"code": -1, "msg": …}`."""

    @csrf_exempt
    @require_POST
    def view(request: HttpRequest) -> JsonResponse:
        try:
            return JsonResponse(handler(request, request_params(request)), json_dumps_params={"ensure_ascii": False})
        except ApplicationError as error:
            return JsonResponse({"code": -1, "msg": error.message}, json_dumps_params={"ensure_ascii": False})

    view.__name__ = handler.__name__
    view.__doc__ = handler.__doc__
    return view


def _trade_fields(trade: SimulatedEpayV2Trade) -> dict[str, str]:
    return {
        "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "api_trade_no": "SIM" + trade.trade_no,
        "type": trade.type, "pid": trade.merchant.pid, "name": trade.name, "money": f"{trade.money:.2f}",
        "refundmoney": f"{trade.refunded_money:.2f}", "param": trade.param, "buyer": "",
        "status": "1" if trade.is_paid else "0",
        "addtime": f"{trade.created_at:%Y-%m-%d %H:%M:%S}",
        "endtime": f"{trade.paid_at:%Y-%m-%d %H:%M:%S}" if trade.paid_at else "",
    }


@_json_api
def pay_create(request: HttpRequest, params: dict[str, str]) -> dict[str, Any]:
    """api/pay/create: `pay_info` is the cashier's URL — to redirect to (jump) or to show as a QR code (scan)."""
    trade = simulated_epay_v2_trade_create(params=params)
    cashier_url = request.build_absolute_uri(reverse("simulators:epay_v2:cashier", args=[trade.trade_no]))
    pay_type = "qrcode" if trade.method in QR_METHODS else "jump"
    return signed_reply(trade.merchant, {"trade_no": trade.trade_no, "pay_type": pay_type, "pay_info": cashier_url})


@_json_api
def pay_query(request: HttpRequest, params: dict[str, str]) -> dict[str, Any]:
    merchant = authenticated_merchant(params)
    trade = simulated_epay_v2_trade_of_merchant(merchant=merchant, trade_no=params.get("trade_no", ""),
                                                out_trade_no=params.get("out_trade_no", ""))
    return signed_reply(merchant, _trade_fields(trade))


@_json_api
def pay_refund(request: HttpRequest, params: dict[str, str]) -> dict[str, Any]:
    refund = simulated_epay_v2_refund(params=params)
    return signed_reply(refund.merchant, {
        "msg": "退款成功", "refund_no": refund.refund_no, "out_refund_no": refund.out_refund_no,
        "trade_no": refund.trade.trade_no, "money": f"{refund.money:.2f}", "reducemoney": f"{refund.money:.2f}"})


@_json_api
def pay_refund_query(request: HttpRequest, params: dict[str, str]) -> dict[str, Any]:
    merchant = authenticated_merchant(params)
    refund = simulated_epay_v2_refund_of_merchant(merchant=merchant, refund_no=params.get("refund_no", ""),
                                                  out_refund_no=params.get("out_refund_no", ""))
    return signed_reply(merchant, {
        "refund_no": refund.refund_no, "out_refund_no": refund.out_refund_no, "trade_no": refund.trade.trade_no,
        "out_trade_no": refund.trade.out_trade_no, "money": f"{refund.money:.2f}", "status": "1",
        "addtime": f"{refund.created_at:%Y-%m-%d %H:%M:%S}"})


def _not_found(request: HttpRequest) -> HttpResponse:
    return error_page(request, EpayV2SimulatorError("交易不存在", code="unknown_trade"), status=404)


@require_GET
def cashier(request: HttpRequest, trade_no: str) -> HttpResponse:
    trade = simulated_epay_v2_trade_by_number(trade_no=trade_no)
    if trade is None:
        return _not_found(request)
    return render(request, "simulators/epay_cashier.html", {
        "trade": trade, "merchant_name": trade.merchant.name,
        "pay_type_label": PAY_TYPE_LABELS.get(trade.type, trade.type),
        "pay_url": reverse("simulators:epay_v2:cashier_pay", args=[trade.trade_no]),
        "cancel_url": reverse("simulators:epay_v2:cashier_cancel", args=[trade.trade_no]),
        "return_url": simulated_epay_v2_return_url(trade) if trade.is_paid and trade.return_url else "",
    })


@require_POST
def cashier_pay(request: HttpRequest, trade_no: str) -> HttpResponse:
    try:
        trade = simulated_epay_v2_trade_pay(trade_no=trade_no)
    except ApplicationError as error:
        return error_page(request, error, status=error.status_code)
    if trade.return_url:
        return HttpResponseRedirect(simulated_epay_v2_return_url(trade))
    return paid_page(request, merchant_name=trade.merchant.name, money=trade.money)


@require_GET
def cashier_cancel(request: HttpRequest, trade_no: str) -> HttpResponse:
    trade = simulated_epay_v2_trade_by_number(trade_no=trade_no)
    if trade is None:
        return _not_found(request)
    return cancelled_page(request, merchant_name=trade.merchant.name, return_url=trade.return_url,
                          out_trade_no=trade.out_trade_no)
