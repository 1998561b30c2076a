"""The simulated UnionPay end to end with our adapter: the consume form, the cashier, the signed back-end
notification, the frontUrl return, query reconciliation and refunds, and a storefront order paid through it.

Both HTTP directions stay in this process: the adapter's server calls (`unionpay.server_transport`) and the
simulator's notifications (`services.notify_transport`) are httpx transports handing the request to Django's test
client, as the network would hand it to the running site.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.payments.gateways import unionpay as unionpay_adapter
from kameng.payments.gateways.base import GatewayError, RefundStatus
from kameng.payments.gateways.unionpay import build
from kameng.payments.models import ChannelKind, NotificationOutcome, Payment, PaymentChannel, PaymentNotification
from kameng.payments.reconciliation import payments_reconcile_pending
from kameng.payments.services import wallet_topup_start
from kameng.risk.models import RiskEvent
from kameng.simulators.unionpay import services as simulator
from kameng.simulators.unionpay.models import SimulatedUnionPayMerchant, SimulatedUnionPayStatus, SimulatedUnionPayTrade
from kameng.simulators.unionpay.services import (
    simulated_unionpay_authority,
    simulated_unionpay_merchant_create,
    unionpay_merchant_certificate_issue,
)
from kameng.simulators.unionpay.signing import Issued
from tests.factories import SkuFactory, UserFactory, stock_sku

pytestmark = pytest.mark.django_db

MER_ID = "777290058110048"
GATEWAY_URL = "http://testserver/sim/unionpay/gateway/api/"
FRONT_TRANS = "/sim/unionpay/gateway/api/frontTransReq.do"


@pytest.fixture
def merchant_keys() -> Issued:
    """Issued by the simulator's authority, itself made (with fresh keys) in this test's database."""
    return unionpay_merchant_certificate_issue()


@pytest.fixture
def merchant(merchant_keys: Issued) -> SimulatedUnionPayMerchant:
    return simulated_unionpay_merchant_create(mer_id=MER_ID, name="演示卡盟",
                                              certificate_pem=merchant_keys.certificate_pem)


def _channel(merchant_keys: Issued, *, code: str = "unionpay") -> PaymentChannel:
    return PaymentChannel.objects.create(
        code=code, name="银联", kind=ChannelKind.UNIONPAY, gateway_url=GATEWAY_URL, merchant_id=MER_ID,
        merchant_key=merchant_keys.private_key_pem + merchant_keys.certificate_pem,
        platform_public_key=simulated_unionpay_authority().trust_bundle, pay_type="07")


def _into_django(request: httpx.Request) -> httpx.Response:
    target = request.url.raw_path.decode()
    response = Client().post(target, data=request.content,
                             content_type=request.headers.get("content-type", "application/octet-stream"))
    return httpx.Response(response.status_code, content=response.content)


@pytest.fixture(autouse=True)
def _in_process_network(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = httpx.MockTransport(_into_django)
    monkeypatch.setattr(unionpay_adapter, "server_transport", transport)
    monkeypatch.setattr(simulator, "notify_transport", transport)


def _form(html: str, marker: str = "") -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the first form whose tag holds `marker` (the page may hold others, with
    their own CSRF fields)."""
    for attributes, body in re.findall(r"<form([^>]*)>(.*?)</form>", html, re.DOTALL):
        action = re.search(r' action="([^"]+)"', attributes)
        if marker in attributes and action is not None:
            fields = {unescape(name): unescape(value)
                      for name, value in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', body)}
            return unescape(action.group(1)), fields
    raise AssertionError(f"no form with {marker!r}")


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


Press = Callable[..., Any]


@pytest.fixture
def press(django_capture_on_commit_callbacks: Callable[..., Any]) -> Press:
    """The buyer presses a cashier button; the notification task runs once the payment commits."""

    def at_cashier(trade: SimulatedUnionPayTrade, button: str = "pay", browser: Client | None = None) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return (browser or Client()).post(reverse(f"simulators:unionpay_cashier_{button}", args=[trade.query_id]))

    return at_cashier


def _to_cashier(channel: PaymentChannel, amount: str = "10.00",
                browser: Client | None = None) -> tuple[Payment, SimulatedUnionPayTrade, Any]:
    """Start a wallet top-up and post its form from the buyer's browser to frontTransReq.do, as the storefront's
    gateway-form.js does."""
    buyer = UserFactory.create()
    started = wallet_topup_start(user_id=buyer.pk, channel_code=channel.code, amount_text=amount,
                                 client_ip="203.0.113.7")
    action, fields = _form(started.start.html)
    assert action == GATEWAY_URL + "frontTransReq.do"
    browser = browser or Client()
    browser.force_login(buyer)
    cashier = browser.post(_path(action), fields)
    assert cashier.status_code == 200, cashier.content.decode()[:500]
    return started.payment, SimulatedUnionPayTrade.objects.get(order_id=started.payment.number), cashier


def _assert_credited_once(payment: Payment) -> None:
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert wallet_balance(user_id=payment.user_id) == payment.amount
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    assert not RiskEvent.objects.exists()


def test_gateway_pay_end_to_end_credits_once_and_the_return_confirms(merchant: SimulatedUnionPayMerchant,
                                                                     merchant_keys: Issued, press: Press) -> None:
    browser = Client()
    payment, trade, cashier = _to_cashier(_channel(merchant_keys), amount="12.34", browser=browser)
    assert "确认付款" in cashier.content.decode()
    assert '<link rel="icon" href="data:,">' in cashier.content.decode()  # no request for /favicon.ico
    assert (trade.amount, trade.txn_time, trade.status) == (Decimal("12.34"), "20" + payment.number[1:13],
                                                            SimulatedUnionPayStatus.WAITING)

    paid = press(trade, browser=browser)

    _assert_credited_once(payment)
    assert payment.gateway_trade_no == trade.query_id
    trade.refresh_from_db()
    assert (trade.notify_attempts, trade.last_notify_response) == (1, "HTTP 200: ok")
    assert PaymentNotification.objects.get().outcome == NotificationOutcome.CREDITED
    # 返回商户: the signed result form, posted by the browser to frontUrl (our return page, naming the payment).
    front_url, fields = _form(paid.content.decode())
    assert front_url == f"{settings.SITE_URL}/pay/return/?out_trade_no={payment.number}"
    assert fields["respCode"] == "00"
    # A browser sends every line break of a form as CRLF: the certificate is signed with CRLF already.
    assert "\n" not in fields["signPubKeyCert"].replace("\r\n", "")
    assert build(payment.channel).return_is_authentic({**fields, "out_trade_no": payment.number})
    assert not build(payment.channel).return_is_authentic({**fields, "out_trade_no": "P261203094512000999999"})
    back = browser.post(_path(front_url), fields)
    assert back["Location"] == reverse("web:topup_status", args=[payment.number])
    # Pressing again (a double click) sends nothing new and credits nothing more.
    press(trade, browser=browser)
    trade.refresh_from_db()
    assert trade.notify_attempts == 1
    _assert_credited_once(payment)


def test_the_return_alone_confirms_a_payment_whose_notification_is_late(merchant: SimulatedUnionPayMerchant,
                                                                       merchant_keys: Issued) -> None:
    browser = Client()
    payment, trade, _ = _to_cashier(_channel(merchant_keys), browser=browser)
    # Paid without running the on-commit notification task: only the return (and its query) can tell us.
    paid = browser.post(reverse("simulators:unionpay_cashier_pay", args=[trade.query_id]))
    front_url, fields = _form(paid.content.decode())

    forged = browser.post(_path(front_url), {**fields, "txnAmt": "1"})
    payment.refresh_from_db()
    assert payment.status == "pending"  # a tampered return asks nothing
    back = browser.post(_path(front_url), fields)

    assert back["Location"] == reverse("web:topup_status", args=[payment.number])
    assert forged["Location"] == back["Location"]
    _assert_credited_once(payment)
    assert not PaymentNotification.objects.exists()


def test_a_payment_failed_at_the_cashier_is_never_credited(merchant: SimulatedUnionPayMerchant,
                                                           merchant_keys: Issued, press: Press) -> None:
    payment, trade, _ = _to_cashier(_channel(merchant_keys))

    failed = press(trade, "fail")

    assert "支付失败" in failed.content.decode()
    trade.refresh_from_db()
    assert (trade.status, trade.notify_attempts) == (SimulatedUnionPayStatus.FAILED, 0)
    result = build(payment.channel).query(out_trade_no=payment.number)
    assert (result.is_paid, result.amount, result.is_failed) == (False, None, True)
    assert payments_reconcile_pending(older_than_seconds=0) == 0
    payment.refresh_from_db()
    assert (payment.status, payment.close_reason) == ("closed", "payment_failed")
    assert wallet_balance(user_id=payment.user_id) == Decimal("0.00")
    assert press(trade).status_code == 200  # paying a failed transaction afterwards changes nothing
    trade.refresh_from_db()
    assert trade.status == SimulatedUnionPayStatus.FAILED


def test_a_lost_notification_is_recovered_by_query(merchant: SimulatedUnionPayMerchant, merchant_keys: Issued,
                                                   monkeypatch: pytest.MonkeyPatch, press: Press) -> None:
    channel = _channel(merchant_keys)
    payment, trade, _ = _to_cashier(channel, amount="12.34")
    unpaid, _, _ = _to_cashier(channel, amount="1.00")
    never_sent = wallet_topup_start(user_id=UserFactory.create().pk, channel_code=channel.code,
                                    amount_text="2.00").payment

    def lost(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway")

    monkeypatch.setattr(simulator, "notify_transport", httpx.MockTransport(lost))
    press(trade)
    payment.refresh_from_db()
    assert payment.status == "pending"

    assert payments_reconcile_pending(older_than_seconds=0) == 1
    assert payments_reconcile_pending(older_than_seconds=0) == 0

    payment.refresh_from_db()
    assert (payment.status, payment.gateway_trade_no) == ("succeeded", trade.query_id)
    for other in (unpaid, never_sent):  # waiting at the cashier (05), and unknown to UnionPay (34)
        other.refresh_from_db()
        assert other.status == "pending"
    assert wallet_balance(user_id=payment.user_id) == Decimal("12.34")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).count() == 1


def test_the_notification_is_retried_until_the_merchant_answers_200(
        merchant: SimulatedUnionPayMerchant, merchant_keys: Issued, monkeypatch: pytest.MonkeyPatch,
        press: Press) -> None:
    payment, trade, _ = _to_cashier(_channel(merchant_keys))
    statuses = [500, 404, 200]
    seen: list[httpx.Request] = []

    def merchant_side(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = _into_django(request)
        assert answer.status_code == 200
        return httpx.Response(statuses[len(seen) - 1], text="whatever")

    monkeypatch.setattr(simulator, "notify_transport", httpx.MockTransport(merchant_side))

    press(trade)

    trade.refresh_from_db()
    assert (len(seen), trade.notify_attempts, trade.notified_at is not None) == (3, 3, True)
    _assert_credited_once(payment)
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.DUPLICATE).count() == 2


def _paid(merchant_keys: Issued, press: Press, amount: str = "10.00") -> tuple[Payment, SimulatedUnionPayTrade]:
    payment, trade, _ = _to_cashier(_channel(merchant_keys), amount=amount)
    press(trade)
    payment.refresh_from_db()
    return payment, trade


REFUND_1, REFUND_2, REFUND_3 = "R261203100000000000001", "R261203100001000000002", "R261203100002000000003"


def test_refunds_succeed_once_each_and_never_exceed_what_was_paid(merchant: SimulatedUnionPayMerchant,
                                                                  merchant_keys: Issued, press: Press) -> None:
    payment, trade = _paid(merchant_keys, press)
    gateway = build(payment.channel)

    def refund(number: str, amount: str, gateway_trade_no: str = trade.query_id) -> tuple[str, str]:
        result = gateway.refund(out_trade_no=payment.number, gateway_trade_no=gateway_trade_no, refund_no=number,
                                amount=Decimal(amount), total_amount=payment.amount, reason="售后退款")
        return result.status, result.message

    first = refund(REFUND_1, "4.00")
    again = refund(REFUND_1, "4.00")
    too_much = refund(REFUND_2, "6.01")
    rest = refund(REFUND_3, "6.00", gateway_trade_no="")  # origQryId found by a query first

    assert first == again == (RefundStatus.SUCCEEDED, "银联已退款 ¥4.00")
    assert too_much[0] == RefundStatus.FAILED
    assert "退货金额超限" in too_much[1]
    assert rest == (RefundStatus.SUCCEEDED, "银联已退款 ¥6.00")
    trade.refresh_from_db()
    assert trade.refunded_amount == Decimal("10.00")
    assert list(trade.refunds.order_by("id").values_list("order_id", "amount")) == [
        (REFUND_1, Decimal("4.00")), (REFUND_3, Decimal("6.00"))]
    found = gateway.refund_query(out_trade_no=payment.number, gateway_trade_no=trade.query_id, refund_no=REFUND_1)
    missing = gateway.refund_query(out_trade_no=payment.number, gateway_trade_no=trade.query_id, refund_no=REFUND_2)
    assert found.status == RefundStatus.SUCCEEDED
    assert found.gateway_refund_no == trade.refunds.get(order_id=REFUND_1).query_id
    assert missing.status == RefundStatus.NOT_FOUND  # refused, so never recorded: it may be sent again


def test_a_refund_of_an_unpaid_consume_is_refused(merchant: SimulatedUnionPayMerchant, merchant_keys: Issued) -> None:
    payment, trade, _ = _to_cashier(_channel(merchant_keys))

    result = build(payment.channel).refund(out_trade_no=payment.number, gateway_trade_no=trade.query_id,
                                           refund_no=REFUND_1, amount=Decimal("1.00"), total_amount=payment.amount,
                                           reason="")

    assert result.status == RefundStatus.FAILED
    assert "不能退货" in result.message
    assert not trade.refunds.exists()


def test_a_refund_notification_is_acknowledged_without_crediting(merchant: SimulatedUnionPayMerchant,
                                                                 merchant_keys: Issued, press: Press) -> None:
    payment, trade = _paid(merchant_keys, press)
    build(payment.channel).refund(out_trade_no=payment.number, gateway_trade_no=trade.query_id, refund_no=REFUND_1,
                                  amount=Decimal("3.00"), total_amount=payment.amount, reason="")
    refund = trade.refunds.get()

    attempt = simulator.simulated_unionpay_notify_send(trade_id=refund.pk)

    assert attempt.is_delivered
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.NOT_PAID).count() == 1
    _assert_credited_once(payment)


def test_a_tampered_consume_form_is_refused(merchant: SimulatedUnionPayMerchant, merchant_keys: Issued) -> None:
    started = wallet_topup_start(user_id=UserFactory.create().pk, channel_code=_channel(merchant_keys).code,
                                 amount_text="10.00")
    _, fields = _form(started.start.html)

    response = Client().post(FRONT_TRANS, {**fields, "txnAmt": "1"})

    assert response.status_code == 400
    assert "验证签名失败" in response.content.decode()
    assert not SimulatedUnionPayTrade.objects.exists()


def test_a_request_signed_with_another_key_is_refused(merchant: SimulatedUnionPayMerchant,
                                                      merchant_keys: Issued) -> None:
    channel = _channel(merchant_keys)
    channel.merchant_key = unionpay_merchant_certificate_issue().private_key_pem
    channel.merchant_serial_no = merchant.cert_id

    with pytest.raises(GatewayError) as raised:
        build(channel).query(out_trade_no="P261203094512000123456")

    assert raised.value.code == "gateway_refused"
    assert "11" in raised.value.message


def test_an_answer_from_an_untrusted_authority_is_refused(merchant: SimulatedUnionPayMerchant,
                                                          merchant_keys: Issued) -> None:
    from tests.payments.unionpay_keys import issue

    channel = _channel(merchant_keys)
    channel.platform_public_key = issue("Another Root", is_authority=True).pem

    with pytest.raises(GatewayError) as raised:
        build(channel).query(out_trade_no="P261203094512000123456")

    assert raised.value.code == "gateway_bad_signature"


def test_an_unreachable_gateway_is_a_request_not_sent(merchant: SimulatedUnionPayMerchant, merchant_keys: Issued,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(unionpay_adapter, "server_transport", httpx.MockTransport(down))

    with pytest.raises(GatewayError) as raised:
        build(_channel(merchant_keys)).query(out_trade_no="P261203094512000123456")

    assert raised.value.code == "gateway_unreachable"


def test_the_authority_keeps_its_private_keys_encrypted(merchant: SimulatedUnionPayMerchant) -> None:
    authority = simulated_unionpay_authority()

    assert simulated_unionpay_authority().pk == authority.pk  # made once
    with connection.cursor() as cursor:
        cursor.execute("SELECT middle_private_key, signing_private_key FROM sim_unionpay_simulatedunionpayauthority")
        stored = cursor.fetchone()
    assert all(b"PRIVATE KEY" not in bytes(value) for value in stored)
    assert str(authority.signing_private_key).startswith("-----BEGIN PRIVATE KEY-----")


def test_the_admin_lists_transactions_and_resends_a_notification(admin_client: Client,
                                                                 merchant: SimulatedUnionPayMerchant,
                                                                 merchant_keys: Issued, press: Press) -> None:
    payment, trade = _paid(merchant_keys, press)
    changelist = reverse("admin:sim_unionpay_simulatedunionpaytrade_changelist")

    assert trade.query_id in admin_client.get(changelist).content.decode()
    admin_client.post(changelist, {"action": "resend_notify", "_selected_action": [trade.pk]})

    trade.refresh_from_db()
    assert trade.notify_attempts == 2
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.DUPLICATE).count() == 1
    _assert_credited_once(payment)
    assert admin_client.get(reverse("admin:sim_unionpay_simulatedunionpaymerchant_changelist")).status_code == 200


def test_a_storefront_order_paid_with_unionpay_is_delivered(client: Client, merchant: SimulatedUnionPayMerchant,
                                                            merchant_keys: Issued, press: Press) -> None:
    channel = _channel(merchant_keys)
    buyer = UserFactory.create()
    client.force_login(buyer)
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 3)
    client.post(reverse("web:buy", args=[sku.product_id]), {"sku": sku.pk, "quantity": 2, "request_id": "u-1"})
    order = Order.objects.get()
    assert order.status == OrderStatus.PENDING_PAYMENT

    page = client.post(reverse("web:order_pay", args=[order.number]), {"channel": channel.code})

    assert page.status_code == 200
    assert "data-gateway-form" in page.content.decode()
    action, fields = _form(page.content.decode(), 'id="unionpay-pay"')
    assert fields["txnAmt"] == "1600"
    client.post(_path(action), fields)
    trade = SimulatedUnionPayTrade.objects.get()
    paid = press(trade, browser=client)
    front_url, result = _form(paid.content.decode(), "/pay/return/")
    back = client.post(_path(front_url), result)

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert back["Location"] == reverse("web:order_detail", args=[order.number])
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")  # the payment went straight to the order
    assert Payment.objects.get().status == "succeeded"


def test_a_topup_failed_at_the_cashier_says_so_when_the_buyer_returns(merchant: SimulatedUnionPayMerchant,
                                                                     merchant_keys: Issued, press: Press) -> None:
    browser = Client()
    payment, trade, _ = _to_cashier(_channel(merchant_keys), browser=browser)
    failed = press(trade, "fail", browser=browser)
    front_url, fields = _form(failed.content.decode())
    assert fields["respCode"] == "01"

    back = browser.post(_path(front_url), fields)  # 返回商户

    assert back["Location"] == reverse("web:topup_status", args=[payment.number])
    page = browser.get(back["Location"]).content.decode()
    assert 'data-testid="topup-failed"' in page
    assert "支付失败" in page
    assert "正在等待支付结果" not in page
    assert 'hx-trigger="every 2s"' not in page  # nothing left to wait for
    payment.refresh_from_db()
    assert (payment.status, payment.close_reason) == ("closed", "payment_failed")
    assert wallet_balance(user_id=payment.user_id) == Decimal("0.00")
    assert not Journal.objects.exists()


def test_an_order_whose_unionpay_payment_failed_can_be_paid_again(client: Client, merchant: SimulatedUnionPayMerchant,
                                                                  merchant_keys: Issued, press: Press) -> None:
    channel = _channel(merchant_keys)
    buyer = UserFactory.create()
    client.force_login(buyer)
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 3)
    client.post(reverse("web:buy", args=[sku.product_id]), {"sku": sku.pk, "quantity": 1, "request_id": "u-2"})
    order = Order.objects.get()
    page = client.post(reverse("web:order_pay", args=[order.number]), {"channel": channel.code})
    action, fields = _form(page.content.decode(), 'id="unionpay-pay"')
    client.post(_path(action), fields)
    first = Payment.objects.get()
    # Before the buyer is back, the payment is in flight: the order page says so.
    assert "正在确认支付" in client.get(reverse("web:order_detail", args=[order.number])).content.decode()

    failed = press(SimulatedUnionPayTrade.objects.get(), "fail", browser=client)
    front_url, result = _form(failed.content.decode(), "/pay/return/")
    back = client.post(_path(front_url), result)  # 返回商户

    assert back["Location"] == reverse("web:order_detail", args=[order.number])
    detail = client.get(back["Location"]).content.decode()
    assert "正在确认支付" not in detail
    assert 'data-testid="payment-confirming"' not in detail
    assert 'data-testid="payment-failed"' in detail
    assert f"银联支付单 {first.number} 支付失败" in detail
    first.refresh_from_db()
    assert (first.status, first.close_reason) == ("closed", "payment_failed")
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT

    again = client.post(reverse("web:order_pay", args=[order.number]), {"channel": channel.code})

    assert again.status_code == 200  # no 409 "已有一笔付款正在确认中"
    assert "data-gateway-form" in again.content.decode()
    assert Payment.objects.count() == 2
    action, fields = _form(again.content.decode(), 'id="unionpay-pay"')
    client.post(_path(action), fields)
    paid = press(SimulatedUnionPayTrade.objects.get(order_id=fields["orderId"]), browser=client)
    front_url, result = _form(paid.content.decode(), "/pay/return/")
    client.post(_path(front_url), result)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).count() == 1
