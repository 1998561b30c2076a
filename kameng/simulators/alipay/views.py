"""HTTP face of the simulated Alipay: gateway.do (the browser's page pay and the server APIs), the cashier and
the QR scan page.

Thin: each view turns the request into a parameter dict, calls one service, and answers the way Alipay does — an
HTML cashier for browsers, `{"<method>_response": {...}, "sign": "..."}` JSON for servers.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kameng.core.errors import ApplicationError
from kameng.simulators.alipay.models import SimulatedAlipayApp, SimulatedAlipayTrade
from kameng.simulators.alipay.services import (
    PAGE_PAY,
    AlipayRequestError,
    signed_answer,
    simulated_alipay_close,
    simulated_alipay_precreate,
    simulated_alipay_query,
    simulated_alipay_refund,
    simulated_alipay_refund_query,
    simulated_alipay_request_authenticate,
    simulated_alipay_return_url,
    simulated_alipay_trade_open,
    simulated_alipay_trade_pay,
)


def _params(request: HttpRequest) -> dict[str, str]:
    """Every received field, query and form together (the form wins), as gateway.do takes them."""
    return {**request.GET.dict(), **request.POST.dict()}


def _message(request: HttpRequest, title: str, message: str, *, code: str = "", status: int = 200) -> HttpResponse:
    return render(request, "sim_alipay/message.html",
                  {"title": title, "message": message, "code": code, "is_error": status >= 400},
                  status=status)


def _cashier(request: HttpRequest, trade: SimulatedAlipayTrade) -> HttpResponse:
    context: dict[str, Any] = {
        "trade": trade, "pay_url": reverse("simulators:alipay_cashier_pay", args=[trade.trade_no]),
        "return_url": simulated_alipay_return_url(trade) if trade.is_paid and trade.return_url else "",
    }
    return render(request, "sim_alipay/cashier.html", context)


def _server_answer(request: HttpRequest, params: dict[str, str]) -> HttpResponse:
    method = params.get("method", "")
    app: SimulatedAlipayApp | None = None
    try:
        authenticated = simulated_alipay_request_authenticate(params=params)
        app = authenticated.app
        if method == "alipay.trade.precreate":
            qr_url = request.build_absolute_uri(reverse("simulators:alipay_qr", args=["TRADE_NO"]))
            answer = simulated_alipay_precreate(request=authenticated, qr_url=qr_url)
        elif method == "alipay.trade.query":
            answer = simulated_alipay_query(request=authenticated)
        elif method == "alipay.trade.refund":
            answer = simulated_alipay_refund(request=authenticated)
        elif method == "alipay.trade.fastpay.refund.query":
            answer = simulated_alipay_refund_query(request=authenticated)
        elif method == "alipay.trade.close":
            answer = simulated_alipay_close(request=authenticated)
        else:
            raise AlipayRequestError("该方法只能由浏览器访问", code="40002", sub_code="isv.invalid-method")
        body = {"code": "10000", "msg": "Success", **answer}
    except AlipayRequestError as error:
        body = {"code": error.alipay_code, "msg": "Business Failed" if error.alipay_code == "40004"
                else "Invalid Arguments", "sub_code": error.sub_code, "sub_msg": error.message}
        if error.alipay_code != "40004":
            app = None  # like Alipay: a request it could not authenticate gets an unsigned answer
    return HttpResponse(signed_answer(app=app, method=method, answer=body),
                        content_type="application/json;charset=utf-8")


@csrf_exempt  # merchants' pages and servers call this from elsewhere; the RSA2 signature authenticates them
@require_http_methods(["GET", "POST"])
def gateway(request: HttpRequest) -> HttpResponse:
    params = _params(request)
    if params.get("method") != PAGE_PAY:
        return _server_answer(request, params)
    try:
        trade = simulated_alipay_trade_open(request=simulated_alipay_request_authenticate(params=params))
    except AlipayRequestError as error:
        return _message(request, "支付请求错误", error.message, code=error.sub_code, status=400)
    return _cashier(request, trade)


@require_GET
def cashier(request: HttpRequest, trade_no: str) -> HttpResponse:
    """The cashier of a page-pay trade, or the page a buyer's phone opens on scanning a precreate QR code."""
    trade = SimulatedAlipayTrade.objects.select_related("app").filter(trade_no=trade_no).first()
    if trade is None:
        return _message(request, "交易不存在", "请检查链接或二维码是否正确。", status=404)
    return _cashier(request, trade)


@require_POST
def cashier_pay(request: HttpRequest, trade_no: str) -> HttpResponse:
    try:
        trade = simulated_alipay_trade_pay(trade_no=trade_no)
    except ApplicationError as error:
        return _message(request, "支付失败", error.message, code=error.code, status=error.status_code)
    if trade.return_url:
        return HttpResponseRedirect(simulated_alipay_return_url(trade))
    return _message(request, "支付成功", f"已向 {trade.app.name} 支付 ¥{trade.total_amount:.2f}，可以关闭本页。")
