"""The buyer-facing pages 易支付 V1 and V2 share: the same templates, the same error, paid and cancelled pages,
and PHP-style request parameters. Each version keeps its own views and URLs."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode, urlsplit

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from kameng.core.errors import ApplicationError


def request_params(request: HttpRequest) -> dict[str, str]:
    """Every received field, GET and POST together like PHP's $_REQUEST (POST wins)."""
    return {**request.GET.dict(), **request.POST.dict()}


def error_page(request: HttpRequest, error: ApplicationError, status: int = 400) -> HttpResponse:
    return render(request, "simulators/epay_message.html",
                  {"title": "支付请求错误", "message": error.message, "code": error.code, "is_error": True},
                  status=status)


def paid_page(request: HttpRequest, *, merchant_name: str, money: Decimal) -> HttpResponse:
    """Shown after paying a trade that has no `return_url` to send the browser back to."""
    message = f"已向 {merchant_name} 支付 ¥{money:.2f}，可以关闭本页。"
    return render(request, "simulators/epay_message.html", {"title": "支付成功", "message": message})


def cancelled_page(request: HttpRequest, *, merchant_name: str, return_url: str, out_trade_no: str) -> HttpResponse:
    """The buyer cancelled at the cashier: nothing is charged. The link goes back to the merchant's return URL with
    the merchant's order number only, unsigned (as epay cashiers do): the merchant shows that order, and an unsigned
    return proves nothing, so it changes nothing there."""
    back = ""
    if return_url:
        back = f"{return_url}{'&' if urlsplit(return_url).query else '?'}{urlencode({'out_trade_no': out_trade_no})}"
    return render(request, "simulators/epay_message.html", {
        "title": "已取消支付", "message": "本次支付已取消，未扣款。订单在商户处保留，可稍后重新支付。",
        "link_url": back, "link_text": f"返回 {merchant_name}",
    })
