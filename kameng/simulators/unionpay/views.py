"""HTTP face of the simulated UnionPay: gateway/api/frontTransReq.do (the buyer's browser, answered with the
cashier), queryTrans.do and backTransReq.do (servers, answered with signed `k=v&k=v` text), and the cashier.

Thin: each view turns the request into a field dict, calls one service, and answers the way UnionPay does.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from kameng.core.errors import ApplicationError
from kameng.simulators.unionpay.models import SimulatedUnionPayTrade
from kameng.simulators.unionpay.services import (
    UnionPayRequestError,
    signed_answer,
    simulated_unionpay_consume_finish,
    simulated_unionpay_consume_open,
    simulated_unionpay_front_return,
    simulated_unionpay_query,
    simulated_unionpay_refund,
)
from kameng.simulators.unionpay.signing import answer_text


def _message(request: HttpRequest, title: str, message: str, *, code: str = "", status: int = 200) -> HttpResponse:
    return render(request, "sim_unionpay/message.html",
                  {"title": title, "message": message, "code": code, "is_error": status >= 400}, status=status)


def _cashier(request: HttpRequest, trade: SimulatedUnionPayTrade) -> HttpResponse:
    return render(request, "sim_unionpay/cashier.html", {
        "trade": trade, "pay_url": reverse("simulators:unionpay_cashier_pay", args=[trade.query_id]),
        "fail_url": reverse("simulators:unionpay_cashier_fail", args=[trade.query_id]),
        "front_return": simulated_unionpay_front_return(trade)})


@csrf_exempt  # the merchant's page posts here from its own site; the RSA signature authenticates it
@require_POST
def front_trans(request: HttpRequest) -> HttpResponse:
    try:
        trade = simulated_unionpay_consume_open(params=request.POST.dict())
    except UnionPayRequestError as error:
        return _message(request, "支付请求错误", error.message, code=error.resp_code, status=400)
    return _cashier(request, trade)


def _server(request: HttpRequest, service: Callable[..., dict[str, str]]) -> HttpResponse:
    params = request.POST.dict()
    try:
        answer = signed_answer(service(params=params), resp_code="00", resp_msg="成功[0000000]")
    except UnionPayRequestError as error:
        echoed = {name: params[name] for name in ("version", "encoding", "signMethod", "txnType", "merId", "orderId",
                                                  "txnTime") if params.get(name)}
        answer = signed_answer(echoed, resp_code=error.resp_code, resp_msg=error.message)
    return HttpResponse(answer_text(answer), content_type="text/plain;charset=UTF-8")


@csrf_exempt  # server to server, authenticated by the merchant's signature
@require_POST
def query_trans(request: HttpRequest) -> HttpResponse:
    return _server(request, simulated_unionpay_query)


@csrf_exempt  # server to server, authenticated by the merchant's signature
@require_POST
def back_trans(request: HttpRequest) -> HttpResponse:
    return _server(request, simulated_unionpay_refund)


@require_GET
def cashier(request: HttpRequest, query_id: str) -> HttpResponse:
    trade = SimulatedUnionPayTrade.objects.select_related("merchant").filter(query_id=query_id, txn_type="01").first()
    if trade is None:
        return _message(request, "交易不存在", "请检查链接是否正确。", status=404)
    return _cashier(request, trade)


def _finish(request: HttpRequest, query_id: str, *, is_paid: bool) -> HttpResponse:
    try:
        trade = simulated_unionpay_consume_finish(query_id=query_id, is_paid=is_paid)
    except ApplicationError as error:
        return _message(request, "操作失败", error.message, code=error.code, status=error.status_code)
    return _cashier(request, trade)


@require_POST
def cashier_pay(request: HttpRequest, query_id: str) -> HttpResponse:
    return _finish(request, query_id, is_paid=True)


@require_POST
def cashier_fail(request: HttpRequest, query_id: str) -> HttpResponse:
    return _finish(request, query_id, is_paid=False)
