"""HTTP face of the simulated 易支付 gateway: submit.php, mapi.php, api.php and its cashier page.

Thin: each view turns the request into a parameter dict, calls one service or selector, and renders the answer
the way the protocol expects (an HTML page for browsers, JSON for servers).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kameng.core.errors import ApplicationError
from kameng.simulators.epay_cashier import cancelled_page, error_page, paid_page, request_params
from kameng.simulators.models import SimulatedEpayTrade
from kameng.simulators.selectors import (
    SimulatorRequestError,
    simulated_epay_merchant_by_key,
    simulated_epay_trade_by_number,
    simulated_epay_trade_of_merchant,
)
from kameng.simulators.services import (
    simulated_epay_refund,
    simulated_epay_return_url,
    simulated_epay_trade_open,
    simulated_epay_trade_pay,
)

PAY_TYPE_LABELS = {"alipay": "支付宝", "wxpay": "微信支付", "qqpay": "QQ 钱包", "bank": "网银", "jdpay": "京东支付",
                   "": "收银台"}
# mapi.php error codes: -2 the merchant could not be authenticated, -3 the order conflicts, -4 bad parameters.
MAPI_ERROR_CODES = {"unknown_merchant": -2, "bad_signature": -2, "duplicate_out_trade_no": -3}


def _cashier(request: HttpRequest, trade: SimulatedEpayTrade) -> HttpResponse:
    context: dict[str, Any] = {
        "trade": trade, "merchant_name": trade.merchant.name,
        "pay_type_label": PAY_TYPE_LABELS.get(trade.type, trade.type),
        "pay_url": reverse("simulators:epay_cashier_pay", args=[trade.trade_no]),
        "cancel_url": reverse("simulators:epay_cashier_cancel", args=[trade.trade_no]),
        "return_url": simulated_epay_return_url(trade) if trade.is_paid and trade.return_url else "",
    }
    return render(request, "simulators/epay_cashier.html", context)


@csrf_exempt  # merchants' pages post their signed form here from another origin; the signature authenticates it
@require_http_methods(["GET", "POST"])
def epay_submit(request: HttpRequest) -> HttpResponse:
    try:
        trade = simulated_epay_trade_open(params=request_params(request), client_ip=request.META.get("REMOTE_ADDR", ""))
    except ApplicationError as error:
        return error_page(request, error)
    return _cashier(request, trade)


@csrf_exempt  # server to server, authenticated by the signature
@require_POST
def epay_mapi(request: HttpRequest) -> JsonResponse:
    params = request_params(request)
    try:
        if not params.get("clientip"):
            raise SimulatorRequestError("缺少参数 clientip", code="missing_field")
        trade = simulated_epay_trade_open(params=params, client_ip=params["clientip"],
                                          is_return_url_required=False)
    except ApplicationError as error:
        return JsonResponse({"code": MAPI_ERROR_CODES.get(error.code, -4), "msg": error.message})
    payurl = request.build_absolute_uri(reverse("simulators:epay_cashier", args=[trade.trade_no]))
    return JsonResponse({"code": 1, "msg": "下单成功", "trade_no": trade.trade_no, "payurl": payurl})


def _query(params: dict[str, str]) -> dict[str, Any]:
    try:
        merchant = simulated_epay_merchant_by_key(pid=params.get("pid", ""), key=params.get("key", ""))
        trade = simulated_epay_trade_of_merchant(merchant=merchant, out_trade_no=params.get("out_trade_no", ""),
                                                 trade_no=params.get("trade_no", ""))
    except ApplicationError as error:
        return {"code": -1, "msg": error.message}
    return {
        "code": 1, "msg": "查询订单号成功！", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
        "api_trade_no": "", "type": trade.type, "pid": merchant.pid,
        "addtime": f"{trade.created_at:%Y-%m-%d %H:%M:%S}",
        "endtime": f"{trade.paid_at:%Y-%m-%d %H:%M:%S}" if trade.paid_at else "",
        "name": trade.name, "money": f"{trade.money:.2f}", "refundmoney": f"{trade.refunded_money:.2f}",
        "param": trade.param, "buyer": "", "status": 1 if trade.is_paid else 0,
    }


def _refund(request: HttpRequest, params: dict[str, str]) -> dict[str, Any]:
    if request.method != "POST":
        return {"code": 0, "msg": "退款请使用 POST"}
    try:
        trade = simulated_epay_refund(pid=params.get("pid", ""), key=params.get("key", ""),
                                      trade_no=params.get("trade_no", ""), money_text=params.get("money", ""))
    except ApplicationError as error:
        return {"code": 0, "msg": error.message}
    return {"code": 1, "msg": "退款成功", "trade_no": trade.trade_no, "refundmoney": f"{trade.refunded_money:.2f}"}


@csrf_exempt  # server to server, authenticated by the merchant key
@require_http_methods(["GET", "POST"])
def epay_api(request: HttpRequest) -> JsonResponse:
    params = request_params(request)
    act = params.get("act", "")
    if act == "order":
        return JsonResponse(_query(params))
    if act == "refund":
        return JsonResponse(_refund(request, params))
    return JsonResponse({"code": -1, "msg": f"不支持的操作 act={act}"})


@require_GET
def epay_cashier(request: HttpRequest, trade_no: str) -> HttpResponse:
    trade = simulated_epay_trade_by_number(trade_no=trade_no)
    if trade is None:
        return error_page(request, SimulatorRequestError("交易不存在", code="unknown_trade"), status=404)
    return _cashier(request, trade)


@require_POST
def epay_cashier_pay(request: HttpRequest, trade_no: str) -> HttpResponse:
    try:
        trade = simulated_epay_trade_pay(trade_no=trade_no)
    except ApplicationError as error:
        return error_page(request, error, status=error.status_code)
    if trade.return_url:
        return HttpResponseRedirect(simulated_epay_return_url(trade))
    return paid_page(request, merchant_name=trade.merchant.name, money=trade.money)


@require_GET
def epay_cashier_cancel(request: HttpRequest, trade_no: str) -> HttpResponse:
    trade = simulated_epay_trade_by_number(trade_no=trade_no)
    if trade is None:
        return error_page(request, SimulatorRequestError("交易不存在", code="unknown_trade"), status=404)
    return cancelled_page(request, merchant_name=trade.merchant.name, return_url=trade.return_url,
                          out_trade_no=trade.out_trade_no)
