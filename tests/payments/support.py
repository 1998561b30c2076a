"""Helpers for the payment and gateway-simulator tests: an epay channel wired to the simulator, and an httpx
transport that delivers the simulator's notifications into this Django process (httpx cannot reach the test
client over the network)."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from django.test import Client
from django.urls import Resolver404, resolve

from kameng.payments.gateways.base import QueryResult
from kameng.payments.gateways.epay import EpayV1Gateway
from kameng.payments.models import ChannelKind, Payment, PaymentChannel, PaymentPurpose
from kameng.payments.services import payment_notification_process
from kameng.simulators.models import SimulatedEpayMerchant, SimulatedEpayTrade, SimulatedTradeStatus
from kameng.simulators.services import simulated_epay_merchant_create

PID = "1001"
KEY = "s3cr3t-merchant-key-0123456789ab"
CHANNEL_CODE = "epay"
NOTIFY_URL = "http://testserver/pay/notify/epay/"
RETURN_URL = "http://testserver/wallet/topups/return/"


def epay_merchant(*, pid: str = PID, key: str = KEY) -> SimulatedEpayMerchant:
    return simulated_epay_merchant_create(pid=pid, key=key, name="演示卡盟")


def epay_channel(*, gateway_url: str = "http://testserver/sim/epay/", pid: str = PID, key: str = KEY,
                 code: str = CHANNEL_CODE) -> PaymentChannel:
    return PaymentChannel.objects.create(code=code, name="易支付（模拟）", kind=ChannelKind.EPAY_V1,
                                         gateway_url=gateway_url, merchant_id=pid, merchant_key=key)


def pending_payment(*, user_id: int, channel: PaymentChannel, amount: str = "10.00",
                    number: str = "P0001") -> Payment:
    return Payment.objects.create(number=number, user_id=user_id, channel=channel,
                                  purpose=PaymentPurpose.WALLET_TOPUP, amount=Decimal(amount))


def paid_trade(*, merchant: SimulatedEpayMerchant, out_trade_no: str, money: str = "10.00",
               trade_no: str = "2026112600000000000001") -> SimulatedEpayTrade:
    """A trade the simulated gateway considers paid, as if the buyer had confirmed it at the cashier."""
    return SimulatedEpayTrade.objects.create(
        trade_no=trade_no, merchant=merchant, out_trade_no=out_trade_no, type="alipay", name="钱包充值",
        money_raw=money, money=Decimal(money), notify_url=NOTIFY_URL, return_url=RETURN_URL,
        status=SimulatedTradeStatus.PAID)


def query_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _deliver_into_django(request: httpx.Request) -> httpx.Response:
    """Hand an outgoing GET to the Django app in this process, as the network would to the real site."""
    path = request.url.path
    try:
        resolve(path)
    except Resolver404:
        # The storefront's /pay/notify/<code>/ view may not be there yet; it is a thin wrapper around this.
        if not path.startswith("/pay/notify/"):
            return httpx.Response(404, text="not found")
        answer = payment_notification_process(channel_code=path.rstrip("/").rsplit("/", 1)[-1],
                                              params=dict(request.url.params), remote_addr="127.0.0.1")
        return httpx.Response(answer.status, text=answer.body)
    response = Client().get(path, dict(request.url.params))
    return httpx.Response(response.status_code, content=response.content)


def django_transport() -> httpx.MockTransport:
    return httpx.MockTransport(_deliver_into_django)


def recording_transport(replies: list[str]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport that answers each request with the next reply body (the last one repeats) and keeps them."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=replies[min(len(seen), len(replies)) - 1])

    return httpx.MockTransport(handler), seen


def failing_transport() -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    return httpx.MockTransport(handler)



def epay_query_says_paid(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every epay V1 query answer "paid, the payment's amount" (a gateway return is confirmed by a query);
    the numbers asked about are returned, in order."""
    asked: list[str] = []

    def query(self: EpayV1Gateway, *, out_trade_no: str) -> QueryResult:
        asked.append(out_trade_no)
        payment = Payment.objects.get(number=out_trade_no)
        return QueryResult(is_paid=True, amount=payment.amount, gateway_trade_no=f"T{out_trade_no[-12:]}")

    monkeypatch.setattr(EpayV1Gateway, "query", query)
    return asked
