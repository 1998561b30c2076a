"""HTTP face of the simulated WeChat Pay: the v3 API (signed by the merchant, answered signed by WeChat) and the
page a buyer reaches by scanning the Native QR code.

Thin: each view authenticates the request, calls one service, and answers the way the protocol does.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from kameng.core.errors import ApplicationError
from kameng.simulators.wechat.models import SimulatedWechatMerchant, SimulatedWechatTrade
from kameng.simulators.wechat.services import (
    WechatApiError,
    simulated_wechat_native_open,
    simulated_wechat_refund_create,
    simulated_wechat_refund_json,
    simulated_wechat_refund_of_merchant,
    simulated_wechat_request_authenticate,
    simulated_wechat_signed_headers,
    simulated_wechat_trade_close,
    simulated_wechat_trade_of_merchant,
    simulated_wechat_trade_pay,
    simulated_wechat_transaction,
)

API_ROOT_MARK = "/v3/"


def _signed_path(request: HttpRequest) -> str:
    """The path the merchant signed: relative to the API root (here /sim/wechat), query included."""
    full_path = request.get_full_path()
    return full_path[full_path.index(API_ROOT_MARK):]


def _reply(merchant: SimulatedWechatMerchant | None, data: dict[str, Any] | None, status: int = 200) -> HttpResponse:
    """A JSON reply, signed with the platform key like every WeChat reply once the merchant is known."""
    body = json.dumps(data, separators=(",", ":")).encode() if data is not None else b""
    response = HttpResponse(body, status=status, content_type="application/json; charset=utf-8")
    if merchant is not None:
        for name, value in simulated_wechat_signed_headers(merchant, body).items():
            response[name] = value
    return response


def _error_reply(merchant: SimulatedWechatMerchant | None, error: ApplicationError) -> HttpResponse:
    return _reply(merchant, {"code": error.code, "message": error.message}, status=error.status_code)


def _authenticated(request: HttpRequest) -> SimulatedWechatMerchant:
    return simulated_wechat_request_authenticate(method=request.method or "GET", path=_signed_path(request),
                                                 body=request.body, authorization=request.headers.get(
                                                     "Authorization", ""))


@csrf_exempt  # server to server, authenticated by the Authorization signature
@require_POST
def native_order(request: HttpRequest) -> HttpResponse:
    merchant = None
    try:
        merchant = _authenticated(request)
        trade = simulated_wechat_native_open(merchant=merchant, body=request.body)
    except WechatApiError as error:
        return _error_reply(merchant, error)
    code_url = request.build_absolute_uri(reverse("simulators:sim_wechat:scan", args=[trade.transaction_id]))
    return _reply(merchant, {"code_url": code_url})


@require_GET
def transaction_query(request: HttpRequest, out_trade_no: str) -> HttpResponse:
    merchant = None
    try:
        merchant = _authenticated(request)
        trade = simulated_wechat_trade_of_merchant(merchant=merchant, out_trade_no=out_trade_no,
                                                   mchid=request.GET.get("mchid", ""))
    except WechatApiError as error:
        return _error_reply(merchant, error)
    return _reply(merchant, simulated_wechat_transaction(trade))


@csrf_exempt  # server to server, authenticated by the Authorization signature
@require_POST
def transaction_close(request: HttpRequest, out_trade_no: str) -> HttpResponse:
    merchant = None
    try:
        merchant = _authenticated(request)
        simulated_wechat_trade_close(merchant=merchant, out_trade_no=out_trade_no, body=request.body)
    except WechatApiError as error:
        return _error_reply(merchant, error)
    return _reply(merchant, None, status=204)


@csrf_exempt  # server to server, authenticated by the Authorization signature
@require_POST
def refund_create(request: HttpRequest) -> HttpResponse:
    merchant = None
    try:
        merchant = _authenticated(request)
        refund = simulated_wechat_refund_create(merchant=merchant, body=request.body)
    except WechatApiError as error:
        return _error_reply(merchant, error)
    return _reply(merchant, simulated_wechat_refund_json(refund))


@require_GET
def refund_query(request: HttpRequest, out_refund_no: str) -> HttpResponse:
    merchant = None
    try:
        merchant = _authenticated(request)
        refund = simulated_wechat_refund_of_merchant(merchant=merchant, out_refund_no=out_refund_no)
    except WechatApiError as error:
        return _error_reply(merchant, error)
    return _reply(merchant, simulated_wechat_refund_json(refund))


def _message(request: HttpRequest, title: str, message: str, status: int = 200, *, is_error: bool = False,
             ) -> HttpResponse:
    return render(request, "simulators/epay_message.html",
                  {"title": title, "message": message, "is_error": is_error}, status=status)


@require_GET
def scan(request: HttpRequest, transaction_id: str) -> HttpResponse:
    trade = (SimulatedWechatTrade.objects.select_related("merchant")
             .filter(transaction_id=transaction_id).first())
    if trade is None:
        return _message(request, "二维码无效", "交易不存在或二维码已失效。", 404, is_error=True)
    return render(request, "sim_wechat/scan.html", {"trade": trade, "amount": f"{Decimal(trade.total) / 100:.2f}"})


@require_POST
def scan_pay(request: HttpRequest, transaction_id: str) -> HttpResponse:
    try:
        trade = simulated_wechat_trade_pay(transaction_id=transaction_id)
    except ApplicationError as error:
        return _message(request, "支付失败", error.message, error.status_code, is_error=True)
    amount = f"{Decimal(trade.total) / 100:.2f}"
    return _message(request, "支付成功", f"已向 {trade.merchant.name} 支付 ¥{amount}，可以关闭本页。")
