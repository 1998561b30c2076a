"""The simulated Alipay end to end with our adapter, and against python-alipay-sdk as an outside client.

Both HTTP directions stay in this process: the adapter's server calls (`alipay.server_transport`) and the
simulator's notifications (`services.notify_transport`) are httpx transports handing the request to Django's test
client, exactly as the network would hand it to the running site.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from alipay import AliPay
from django.db import connection
from django.test import Client
from django.urls import reverse

from kameng.core.errors import ApplicationError
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.payments.gateways import alipay as alipay_adapter
from kameng.payments.gateways.alipay import build
from kameng.payments.gateways.base import CloseStatus, GatewayError, RefundStatus
from kameng.payments.models import ChannelKind, NotificationOutcome, Payment, PaymentChannel, PaymentNotification
from kameng.payments.reconciliation import payments_reconcile_pending
from kameng.payments.services import payment_notification_process, wallet_topup_start
from kameng.risk.models import RiskEvent
from kameng.simulators.alipay import services as simulator
from kameng.simulators.alipay.models import SimulatedAlipayApp, SimulatedAlipayTrade, SimulatedAlipayTradeStatus
from kameng.simulators.alipay.services import alipay_app_key_pair_generate, simulated_alipay_app_create
from kameng.simulators.alipay.signing import KeyPair, public_key_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

APP_ID = "2021000100000002"
GATEWAY_URL = "http://testserver/sim/alipay/gateway.do"
NOTIFY_URL = "http://testserver/pay/notify/alipay/"
RETURN_URL = "http://testserver/wallet/topups/return/"


@pytest.fixture(scope="module")
def app_keys() -> KeyPair:
    return alipay_app_key_pair_generate()


@pytest.fixture
def app(app_keys: KeyPair) -> SimulatedAlipayApp:
    return simulated_alipay_app_create(app_id=APP_ID, app_public_key=app_keys.public_key, name="演示卡盟")


def _channel(app: SimulatedAlipayApp, app_keys: KeyPair, *, pay_type: str = "page") -> PaymentChannel:
    return PaymentChannel.objects.create(
        code="alipay", name="支付宝", kind=ChannelKind.ALIPAY, gateway_url=GATEWAY_URL, merchant_id=app.app_id,
        merchant_key=app_keys.private_key, platform_public_key=app.platform_public_key, app_id=app.seller_id,
        pay_type=pay_type)


def _into_django(request: httpx.Request) -> httpx.Response:
    """Hand an outgoing request to this Django app, as the network would to the real site."""
    target = request.url.raw_path.decode()
    if request.method == "GET":
        response = Client().get(target)
    else:
        response = Client().post(target, data=request.content,
                                 content_type=request.headers.get("content-type", "application/octet-stream"))
    return httpx.Response(response.status_code, content=response.content,
                          headers={"content-type": response.get("Content-Type", "text/plain")})


@pytest.fixture(autouse=True)
def _in_process_network(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = httpx.MockTransport(_into_django)
    monkeypatch.setattr(alipay_adapter, "server_transport", transport)
    monkeypatch.setattr(simulator, "notify_transport", transport)


Pay = Callable[..., Any]


@pytest.fixture
def pay(django_capture_on_commit_callbacks: Callable[..., Any]) -> Pay:
    """The buyer presses 确认支付; the notification task runs once the payment commits, as in production."""

    def press(trade_no: str, browser: Client | None = None) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return (browser or Client()).post(reverse("simulators:alipay_cashier_pay", args=[trade_no]))

    return press


def _start(channel: PaymentChannel, amount: str = "10.00") -> tuple[Payment, str, str]:
    started = wallet_topup_start(user_id=UserFactory.create().pk, channel_code=channel.code, amount_text=amount,
                                 return_url=RETURN_URL, client_ip="203.0.113.7")
    return started.payment, started.start.redirect_url, started.start.qr_code


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _assert_credited_once(payment: Payment) -> None:
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert wallet_balance(user_id=payment.user_id) == payment.amount
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.CREDITED).count() == 1
    assert not RiskEvent.objects.exists()


def test_page_pay_end_to_end_credits_the_wallet_once(app: SimulatedAlipayApp, app_keys: KeyPair, pay: Pay) -> None:
    payment, redirect_url, qr_code = _start(_channel(app, app_keys))
    assert redirect_url.startswith(GATEWAY_URL + "?")
    assert qr_code == ""
    browser = Client()

    cashier = browser.get(_path(redirect_url))

    assert cashier.status_code == 200
    assert "确认支付" in cashier.content.decode()
    trade = SimulatedAlipayTrade.objects.get()
    assert (trade.out_trade_no, trade.total_amount, trade.status) == (payment.number, Decimal("10.00"),
                                                                      SimulatedAlipayTradeStatus.WAIT_BUYER_PAY)

    paid = pay(trade.trade_no, browser)

    assert paid.status_code == 302
    assert paid["Location"].startswith(RETURN_URL + "?")
    _assert_credited_once(payment)
    assert payment.gateway_trade_no == trade.trade_no
    trade.refresh_from_db()
    assert trade.notify_attempts == 1
    assert trade.notified_at is not None
    assert trade.last_notify_response == "HTTP 200: success"
    # The synchronous return is signed like a notification: python-alipay-sdk verifies it with the Alipay key.
    returned = dict(parse_qsl(urlsplit(paid["Location"]).query))
    signature = returned.pop("sign")
    verifier = AliPay(appid=APP_ID, app_private_key_string=app_keys.private_key,
                      alipay_public_key_string=app.platform_public_key)
    assert verifier.verify(returned, signature)
    assert returned["out_trade_no"] == payment.number

    # Paying again (a double click) sends nothing new and credits nothing more.
    pay(trade.trade_no, browser)
    trade.refresh_from_db()
    assert trade.notify_attempts == 1
    _assert_credited_once(payment)


def test_precreate_end_to_end_through_the_qr_scan_page(app: SimulatedAlipayApp, app_keys: KeyPair, pay: Pay) -> None:
    payment, redirect_url, qr_code = _start(_channel(app, app_keys, pay_type="precreate"), amount="25.50")
    trade = SimulatedAlipayTrade.objects.get()
    assert redirect_url == ""
    assert qr_code == f"http://testserver/sim/alipay/qr/{trade.trade_no}/"
    payment.refresh_from_db()
    assert payment.qr_code == qr_code
    phone = Client()

    scan = phone.get(_path(qr_code))

    assert scan.status_code == 200
    assert "确认支付" in scan.content.decode()
    assert "¥25.50" in scan.content.decode()
    paid = pay(trade.trade_no, phone)

    assert paid.status_code == 200
    assert "支付成功" in paid.content.decode()
    _assert_credited_once(payment)
    assert wallet_balance(user_id=payment.user_id) == Decimal("25.50")


def test_precreate_again_for_the_same_order_returns_the_same_trade(app: SimulatedAlipayApp,
                                                                   app_keys: KeyPair) -> None:
    gateway = build(_channel(app, app_keys, pay_type="precreate"))
    kwargs = {"out_trade_no": "P0007", "subject": "钱包充值", "notify_url": NOTIFY_URL, "return_url": "",
              "client_ip": ""}

    first = gateway.start(amount=Decimal("5.00"), **kwargs)
    second = gateway.start(amount=Decimal("5.00"), **kwargs)
    with pytest.raises(GatewayError) as raised:
        gateway.start(amount=Decimal("6.00"), **kwargs)

    assert first.qr_code == second.qr_code
    assert SimulatedAlipayTrade.objects.count() == 1
    assert "金额不同" in raised.value.message


def test_notify_is_retried_until_the_body_is_exactly_success(app: SimulatedAlipayApp, app_keys: KeyPair,
                                                              monkeypatch: pytest.MonkeyPatch, pay: Pay) -> None:
    payment, redirect_url, _ = _start(_channel(app, app_keys))
    Client().get(_path(redirect_url))
    trade = SimulatedAlipayTrade.objects.get()
    seen: list[dict[str, str]] = []
    replies = ["fail", "success\n", "SUCCESS", "success"]

    def merchant(request: httpx.Request) -> httpx.Response:
        params = dict(parse_qsl(request.content.decode()))
        seen.append(params)
        answer = payment_notification_process(channel_code="alipay", params=params, remote_addr="127.0.0.1")
        assert answer.body == "success"
        return httpx.Response(200, text=replies[len(seen) - 1])

    monkeypatch.setattr(simulator, "notify_transport", httpx.MockTransport(merchant))

    pay(trade.trade_no)

    trade.refresh_from_db()
    assert trade.notify_attempts == 4
    assert trade.notified_at is not None
    assert len({params["notify_id"] for params in seen}) == 1  # notify_id is stable across retries
    assert all(params["sign_type"] == "RSA2" and params["trade_status"] == "TRADE_SUCCESS" for params in seen)
    _assert_credited_once(payment)
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.DUPLICATE).count() == 3


def test_notify_gives_up_after_eight_attempts(app: SimulatedAlipayApp, app_keys: KeyPair,
                                              monkeypatch: pytest.MonkeyPatch, pay: Pay) -> None:
    _, redirect_url, _ = _start(_channel(app, app_keys))
    Client().get(_path(redirect_url))
    trade = SimulatedAlipayTrade.objects.get()
    calls: list[httpx.Request] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(simulator, "notify_transport", httpx.MockTransport(down))

    pay(trade.trade_no)

    trade.refresh_from_db()
    assert (len(calls), trade.notify_attempts, trade.notified_at) == (8, 8, None)
    assert trade.last_notify_response.startswith("ConnectError")


def test_query_recovers_a_lost_notification(app: SimulatedAlipayApp, app_keys: KeyPair,
                                            monkeypatch: pytest.MonkeyPatch, pay: Pay) -> None:
    channel = _channel(app, app_keys)
    payment, redirect_url, _ = _start(channel, amount="12.34")
    unpaid, _, _ = _start(channel, amount="1.00")
    Client().get(_path(redirect_url))
    trade = SimulatedAlipayTrade.objects.get(out_trade_no=payment.number)

    def lost(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway")

    monkeypatch.setattr(simulator, "notify_transport", httpx.MockTransport(lost))
    pay(trade.trade_no)
    payment.refresh_from_db()
    assert payment.status == "pending"

    assert payments_reconcile_pending(older_than_seconds=0) == 1
    assert payments_reconcile_pending(older_than_seconds=0) == 0

    payment.refresh_from_db()
    unpaid.refresh_from_db()
    assert (payment.status, payment.gateway_trade_no) == ("succeeded", trade.trade_no)
    assert unpaid.status == "pending"  # never sent to Alipay: ACQ.TRADE_NOT_EXIST means not paid
    assert wallet_balance(user_id=payment.user_id) == Decimal("12.34")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).count() == 1


def _paid_trade(app: SimulatedAlipayApp, app_keys: KeyPair, pay: Pay, amount: str = "10.00") -> tuple[Payment, str]:
    payment, redirect_url, _ = _start(_channel(app, app_keys), amount=amount)
    Client().get(_path(redirect_url))
    trade = SimulatedAlipayTrade.objects.get(out_trade_no=payment.number)
    pay(trade.trade_no)
    return payment, trade.trade_no


def test_refund_succeeds_once_per_out_request_no_and_never_more_than_paid(app: SimulatedAlipayApp,
                                                                           app_keys: KeyPair, pay: Pay) -> None:
    payment, trade_no = _paid_trade(app, app_keys, pay)
    gateway = build(payment.channel)

    def refund(refund_no: str, amount: str) -> tuple[str, str]:
        result = gateway.refund(out_trade_no=payment.number, gateway_trade_no=trade_no, refund_no=refund_no,
                                amount=Decimal(amount), total_amount=payment.amount, reason="售后退款")
        return result.status, result.message

    first = refund("R0001", "4.00")
    repeated = refund("R0001", "4.00")
    too_much = refund("R0002", "6.01")
    rest = refund("R0003", "6.00")
    after_all = refund("R0004", "0.01")

    assert first[0] == repeated[0] == rest[0] == RefundStatus.SUCCEEDED
    assert "本次有资金变动" in first[1]
    assert "本次无资金变动" in repeated[1]
    assert too_much == (RefundStatus.FAILED, "退款金额超限")
    assert after_all == (RefundStatus.FAILED, "退款金额超限")
    trade = SimulatedAlipayTrade.objects.get()
    assert trade.refunded_amount == Decimal("10.00")
    assert list(trade.refunds.order_by("id").values_list("out_request_no", "refund_amount")) == [
        ("R0001", Decimal("4.00")), ("R0003", Decimal("6.00"))]


def test_refund_query_finds_a_refund_made_and_not_one_never_sent(app: SimulatedAlipayApp, app_keys: KeyPair,
                                                                 pay: Pay) -> None:
    """alipay.trade.fastpay.refund.query by out_request_no: what settles a refund whose answer was lost."""
    payment, trade_no = _paid_trade(app, app_keys, pay)
    gateway = build(payment.channel)
    gateway.refund(out_trade_no=payment.number, gateway_trade_no=trade_no, refund_no="R0001",
                   amount=Decimal("4.00"), total_amount=payment.amount, reason="售后退款")

    found = gateway.refund_query(out_trade_no=payment.number, gateway_trade_no=trade_no, refund_no="R0001")
    missing = gateway.refund_query(out_trade_no=payment.number, gateway_trade_no="", refund_no="R0002")

    assert gateway.has_refund_query
    assert (found.status, found.gateway_refund_no, found.message) == (RefundStatus.SUCCEEDED, trade_no,
                                                                       "已退款 ¥4.00")
    assert missing.status == RefundStatus.NOT_FOUND
    assert SimulatedAlipayTrade.objects.get().refunded_amount == Decimal("4.00")  # a query refunds nothing


def test_refund_of_an_unpaid_trade_is_refused(app: SimulatedAlipayApp, app_keys: KeyPair) -> None:
    payment, redirect_url, _ = _start(_channel(app, app_keys))
    Client().get(_path(redirect_url))

    result = build(payment.channel).refund(out_trade_no=payment.number, gateway_trade_no="", refund_no="R1",
                                           amount=Decimal("1.00"), total_amount=payment.amount, reason="")

    assert result.status == RefundStatus.FAILED
    assert SimulatedAlipayTrade.objects.get().refunded_amount == Decimal("0.00")


def test_a_request_signed_with_another_key_is_refused_unsigned(app: SimulatedAlipayApp, app_keys: KeyPair) -> None:
    channel = _channel(app, app_keys)
    channel.merchant_key = alipay_app_key_pair_generate().private_key

    with pytest.raises(GatewayError) as raised:
        build(channel).query(out_trade_no="P0001")

    assert raised.value.code == "gateway_refused"
    assert "isv.invalid-signature" in raised.value.message


def test_an_answer_not_signed_by_the_configured_alipay_key_is_refused(app: SimulatedAlipayApp,
                                                                      app_keys: KeyPair) -> None:
    channel = _channel(app, app_keys)
    channel.platform_public_key = alipay_app_key_pair_generate().public_key

    with pytest.raises(GatewayError) as raised:
        build(channel).query(out_trade_no="P0001")

    assert raised.value.code == "gateway_bad_signature"


def test_an_unreachable_gateway_is_a_gateway_error(app: SimulatedAlipayApp, app_keys: KeyPair,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    monkeypatch.setattr(alipay_adapter, "server_transport", httpx.MockTransport(down))

    with pytest.raises(GatewayError) as raised:
        build(_channel(app, app_keys)).query(out_trade_no="P0001")

    assert raised.value.code == "gateway_unreachable"


def test_the_stock_sdk_queries_by_get_and_verifies_the_signed_answer(app: SimulatedAlipayApp,
                                                                     app_keys: KeyPair, pay: Pay) -> None:
    """python-alipay-sdk as shipped sends server APIs as a GET query string; the answer's signature must cover
    the exact JSON text of the inner object, which its own verifier locates in the raw body."""
    payment, trade_no = _paid_trade(app, app_keys, pay, amount="3.00")
    sdk = AliPay(appid=APP_ID, app_private_key_string=app_keys.private_key,
                 alipay_public_key_string=app.platform_public_key)
    query = sdk.sign_data(sdk.build_body("alipay.trade.query", {"out_trade_no": payment.number}))

    raw = Client().get(f"/sim/alipay/gateway.do?{query}").content.decode()
    answer = sdk._verify_and_return_sync_response(raw, "alipay_trade_query_response")

    assert json.loads(raw)["sign"]
    assert (answer["code"], answer["trade_status"], answer["total_amount"], answer["trade_no"]) == (
        "10000", "TRADE_SUCCESS", "3.00", trade_no)


def test_a_tampered_page_pay_request_is_refused(app: SimulatedAlipayApp, app_keys: KeyPair) -> None:
    _, redirect_url, _ = _start(_channel(app, app_keys))
    tampered = redirect_url.replace("10.00", "0.01")
    assert tampered != redirect_url

    response = Client().get(_path(tampered))

    assert response.status_code == 400
    assert "验签出错" in response.content.decode()
    assert not SimulatedAlipayTrade.objects.exists()


def test_app_registration_keeps_the_platform_key_encrypted(app: SimulatedAlipayApp) -> None:
    again = simulated_alipay_app_create(app_id=APP_ID, app_public_key=app.app_public_key, name="新名字")

    assert again.pk == app.pk
    assert again.platform_public_key == app.platform_public_key
    assert again.seller_id.startswith("2088")
    assert len(again.seller_id) == 16
    with connection.cursor() as cursor:
        cursor.execute("SELECT platform_private_key FROM sim_alipay_simulatedalipayapp")
        (stored,) = cursor.fetchone()
    assert b"PRIVATE KEY" not in bytes(stored)
    assert SimulatedAlipayApp.objects.get().signing_key.startswith("-----BEGIN PRIVATE KEY-----")


def test_a_demo_app_can_be_registered_for_a_channel_that_already_has_its_key(app_keys: KeyPair) -> None:
    app = simulated_alipay_app_create(app_id="2021000100000099", app_public_key=public_key_of(app_keys.private_key),
                                      name="演示")

    assert app.app_public_key == app_keys.public_key


def test_a_channel_with_an_unreadable_key_is_a_configuration_error(app: SimulatedAlipayApp,
                                                                   app_keys: KeyPair) -> None:
    channel = _channel(app, app_keys)
    channel.merchant_key = "not a key"

    with pytest.raises(ApplicationError) as raised:
        build(channel)

    assert raised.value.code == "channel_misconfigured"


def test_the_admin_lists_trades_and_resends_a_notification(admin_client: Client, app: SimulatedAlipayApp,
                                                           app_keys: KeyPair, pay: Pay) -> None:
    payment, trade_no = _paid_trade(app, app_keys, pay)
    trade = SimulatedAlipayTrade.objects.get()
    changelist = reverse("admin:sim_alipay_simulatedalipaytrade_changelist")

    assert trade_no in admin_client.get(changelist).content.decode()
    admin_client.post(changelist, {"action": "resend_notify", "_selected_action": [trade.pk]})

    trade.refresh_from_db()
    assert trade.notify_attempts == 2
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.DUPLICATE).count() == 1
    _assert_credited_once(payment)
    for name in ("simulatedalipayapp", "simulatedalipayrefund"):
        assert admin_client.get(reverse(f"admin:sim_alipay_{name}_changelist")).status_code == 200


def test_close_stops_an_unpaid_trade_being_paid(app: SimulatedAlipayApp, app_keys: KeyPair, pay: Pay) -> None:
    payment, redirect_url, _ = _start(_channel(app, app_keys))
    Client().get(_path(redirect_url))
    gateway = build(payment.channel)

    closed = gateway.close(out_trade_no=payment.number)
    again = gateway.close(out_trade_no=payment.number)

    assert gateway.has_close
    assert (closed.status, again.status) == (CloseStatus.CLOSED, CloseStatus.CLOSED)
    trade = SimulatedAlipayTrade.objects.get()
    assert trade.status == SimulatedAlipayTradeStatus.TRADE_CLOSED
    refused = pay(trade.trade_no)
    assert refused.status_code == 400
    assert "交易已关闭" in refused.content.decode()
    assert Client().get(_path(redirect_url)).status_code == 400  # the signed cashier link no longer opens it
    trade.refresh_from_db()
    assert (trade.status, trade.notify_attempts) == (SimulatedAlipayTradeStatus.TRADE_CLOSED, 0)
    assert gateway.query(out_trade_no=payment.number).is_paid is False


def test_close_of_a_trade_never_opened_leaves_nothing_to_close(app: SimulatedAlipayApp, app_keys: KeyPair) -> None:
    payment, _, _ = _start(_channel(app, app_keys))

    result = build(payment.channel).close(out_trade_no=payment.number)

    assert result.status == CloseStatus.CLOSED
    assert "无此交易" in result.message
    assert not SimulatedAlipayTrade.objects.exists()


def test_close_of_a_paid_trade_is_refused_and_says_so(app: SimulatedAlipayApp, app_keys: KeyPair, pay: Pay) -> None:
    payment, _ = _paid_trade(app, app_keys, pay)
    gateway = build(payment.channel)

    result = gateway.close(out_trade_no=payment.number)

    assert result.status == CloseStatus.NOT_OPEN
    assert SimulatedAlipayTrade.objects.get().status == SimulatedAlipayTradeStatus.TRADE_SUCCESS
    assert gateway.query(out_trade_no=payment.number).is_paid is True


def _paid_at_the_cashier_with_the_notification_still_on_its_way(
        app: SimulatedAlipayApp, app_keys: KeyPair) -> tuple[Client, Payment, str]:
    """A buyer pays at the page-pay cashier and is sent back; the notification task has not run yet (its on-commit
    callback is never executed here), so only the return can tell us."""
    buyer = UserFactory.create()
    started = wallet_topup_start(user_id=buyer.pk, channel_code=_channel(app, app_keys).code, amount_text="10.00")
    browser = Client()
    browser.force_login(buyer)
    assert browser.get(_path(started.start.redirect_url)).status_code == 200
    paid = browser.post(reverse("simulators:alipay_cashier_pay", args=[SimulatedAlipayTrade.objects.get().trade_no]))
    assert paid.status_code == 302
    return browser, started.payment, paid["Location"]


def test_the_page_pay_return_is_confirmed_by_a_query_and_is_no_rejected_notification(
        app: SimulatedAlipayApp, app_keys: KeyPair) -> None:
    browser, payment, return_url = _paid_at_the_cashier_with_the_notification_still_on_its_way(app, app_keys)
    assert urlsplit(return_url).path == "/pay/return/"
    assert "trade_status" not in dict(parse_qsl(urlsplit(return_url).query))  # Alipay's return never says

    back = browser.get(_path(return_url))

    assert back["Location"] == reverse("web:topup_status", args=[payment.number])
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert wallet_balance(user_id=payment.user_id) == Decimal("10.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    assert not PaymentNotification.objects.exists()
    assert not RiskEvent.objects.exists()
    assert 'data-status="succeeded"' in browser.get(back["Location"]).content.decode()


def test_a_tampered_page_pay_return_asks_nothing_and_records_nothing(
        app: SimulatedAlipayApp, app_keys: KeyPair) -> None:
    browser, payment, return_url = _paid_at_the_cashier_with_the_notification_still_on_its_way(app, app_keys)
    params = dict(parse_qsl(urlsplit(return_url).query))
    params["out_trade_no"] = payment.number
    params["total_amount"] = "0.01"

    back = browser.get(reverse("payments:return"), params)

    assert back["Location"] == reverse("web:topup_status", args=[payment.number])
    payment.refresh_from_db()
    assert payment.status == "pending"  # the notification (or reconciliation) settles it
    assert wallet_balance(user_id=payment.user_id) == Decimal("0.00")
    assert not PaymentNotification.objects.exists()
    assert not RiskEvent.objects.exists()
