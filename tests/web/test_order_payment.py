"""Paying an order with a channel from the storefront: the buy form's payment method, the pending order's page,
the gateway's notification and return, and a payment that arrives after the order closed."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kameng.accounts.models import User
from kameng.catalog.models import Sku
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.models import JournalKind
from kameng.ledger.selectors import wallet_balance, wallet_statement
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout, order_expire
from kameng.payments.gateways.epay import epay_sign
from kameng.payments.models import (
    ChannelKind,
    NotificationOutcome,
    Payment,
    PaymentChannel,
    PaymentNotification,
    PaymentStatus,
)
from kameng.payments.services import payment_notification_process
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.payments.support import epay_query_says_paid

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse

pytestmark = pytest.mark.django_db

PID = "1001"
KEY = "web-order-merchant-key-012345678"


def _epay(code: str = "epay", **fields: object) -> PaymentChannel:
    return PaymentChannel.objects.create(code=code, name="易支付", kind=ChannelKind.EPAY_V1,
                                         gateway_url="https://pay.example.com/", merchant_id=PID, merchant_key=KEY,
                                         **fields)


def _logged_in(client: Client, funds: str | None = None) -> User:
    user = UserFactory.create()
    if funds is not None:
        fund_wallet(user, funds)
    client.force_login(user)
    return user


def _stocked(price: str = "8.00", count: int = 3) -> tuple[Sku, list[str]]:
    sku = SkuFactory.create(price=Decimal(price))
    return sku, stock_sku(sku, count)


def _buy(client: Client, sku: Sku, method: str, quantity: int = 2,
         request_id: str = "req-1") -> _MonkeyPatchedWSGIResponse:
    return client.post(reverse("web:buy", args=[sku.product_id]),
                       {"sku": sku.pk, "quantity": quantity, "request_id": request_id, "payment_method": method})


def _query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def _notify_params(payment: Payment, *, key: str = KEY) -> dict[str, str]:
    params = {"pid": PID, "trade_no": "2026112600077", "out_trade_no": payment.number, "type": "alipay",
              "name": "order", "money": f"{payment.amount:.2f}", "trade_status": "TRADE_SUCCESS"}
    return {**params, "sign": epay_sign(params, key), "sign_type": "MD5"}


def _keys_on_page(body: str) -> list[str]:
    return re.findall(r'<code data-testid="card-key">([^<]+)</code>', body)


def _reserved(order: Order) -> int:
    return CardKey.objects.filter(order=order, status=CardKeyStatus.RESERVED).count()


def test_product_page_lists_the_balance_and_the_channels_taking_the_amount(client: Client) -> None:
    _logged_in(client, "3.00")
    sku, _ = _stocked(price="8.00")
    _epay(sort_order=2)
    _epay(code="late", sort_order=1)
    _epay(code="small", max_amount=Decimal("5.00"))
    _epay(code="off", is_enabled=False)

    body = client.get(reverse("web:product", args=[sku.product_id])).content.decode()

    methods = re.findall(r'name="payment_method" value="([^"]+)"', body)
    assert methods == ["balance", "late", "epay"]
    assert re.search(r'value="balance" data-testid="pay-method-balance"\s+checked', body)
    assert "¥3.00" in body


def test_buy_with_the_balance_still_pays_and_delivers_at_once(client: Client) -> None:
    buyer = _logged_in(client, "20.00")
    sku, secrets = _stocked()
    _epay()

    response = _buy(client, sku, "balance")

    order = Order.objects.get()
    assert response["Location"] == reverse("web:order_detail", args=[order.number])
    assert order.status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=buyer.pk) == Decimal("4.00")
    assert not Payment.objects.exists()
    shown = _keys_on_page(client.get(response["Location"]).content.decode())
    assert len(set(shown)) == 2
    assert set(shown) <= set(secrets)


def test_buy_with_epay_reserves_the_keys_and_redirects_to_the_signed_gateway_url(client: Client) -> None:
    buyer = _logged_in(client, "1.00")
    sku, _ = _stocked()
    _epay()

    response = _buy(client, sku, "epay")

    order = Order.objects.get()
    payment = Payment.objects.get()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert _reserved(order) == 2
    assert (payment.order_id, payment.amount, payment.user_id) == (order.pk, Decimal("16.00"), buyer.pk)
    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://pay.example.com/submit.php"
    query = _query(response["Location"])
    assert query["out_trade_no"] == payment.number
    assert query["money"] == "16.00"
    assert query["notify_url"] == settings.SITE_URL + "/pay/notify/epay/"
    assert query["return_url"] == settings.SITE_URL + "/pay/return/"
    assert query["sign"] == epay_sign(query, KEY)
    assert wallet_balance(user_id=buyer.pk) == Decimal("1.00")


def test_signed_notify_pays_the_order_and_the_keys_show_with_the_wallet_unchanged(client: Client) -> None:
    buyer = _logged_in(client, "1.00")
    sku, secrets = _stocked()
    _epay()
    _buy(client, sku, "epay")
    payment = Payment.objects.get()

    answer = client.get(reverse("payments:notify", args=["epay"]), _notify_params(payment))
    again = client.get(reverse("payments:notify", args=["epay"]), _notify_params(payment))

    assert (answer.status_code, answer.content, again.content) == (200, b"success", b"success")
    order = Order.objects.get()
    assert order.status == OrderStatus.DELIVERED
    assert CardKey.objects.filter(order=order, status=CardKeyStatus.SOLD).count() == 2
    assert wallet_balance(user_id=buyer.pk) == Decimal("1.00")
    statement = [(row["kind"], row["amount"]) for row in wallet_statement(user_id=buyer.pk, limit=10)]
    assert statement[:2] == [(JournalKind.ORDER_PAYMENT.label, Decimal("-16.00")),
                             (JournalKind.WALLET_TOPUP.label, Decimal("16.00"))]
    assert list(payment.notifications.order_by("id").values_list("outcome", flat=True)) == [
        NotificationOutcome.CREDITED, NotificationOutcome.DUPLICATE]
    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    shown = _keys_on_page(body)
    assert len(set(shown)) == 2  # distinct keys
    assert set(shown) <= set(secrets)
    assert "已通过易支付支付 ¥16.00" in body


def test_the_gateway_return_with_a_signed_query_pays_a_lost_notification(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    _logged_in(client)
    sku, _ = _stocked()
    _epay()
    _buy(client, sku, "epay")
    payment = Payment.objects.get()
    order = Order.objects.get()
    asked = epay_query_says_paid(monkeypatch)

    response = client.get(reverse("payments:return"), _notify_params(payment))

    assert response["Location"] == reverse("web:order_detail", args=[order.number])
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert len(_keys_on_page(client.get(response["Location"]).content.decode())) == 2
    assert asked == [payment.number]
    assert not PaymentNotification.objects.exists()


def test_a_forged_return_query_changes_nothing(client: Client) -> None:
    _logged_in(client)
    sku, _ = _stocked()
    _epay()
    _buy(client, sku, "epay")
    payment = Payment.objects.get()

    client.get(reverse("payments:return"), _notify_params(payment, key="forged"))

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert Order.objects.get().status == OrderStatus.PENDING_PAYMENT


def test_pending_order_page_offers_every_channel_and_pays_with_the_one_posted(client: Client) -> None:
    buyer = _logged_in(client)
    sku, _ = _stocked()
    _epay()
    _epay(code="other")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order

    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    assert 'data-testid="go-topup"' in body  # the wallet is empty: top it up, or pay at a gateway
    assert re.findall(r'name="channel" value="([^"]+)"', body) == ["epay", "other"]
    assert "data-countdown" in body

    response = client.post(reverse("web:order_pay", args=[order.number]), {"channel": "other"})

    payment = Payment.objects.get()
    assert payment.channel.code == "other"
    assert _query(response["Location"])["out_trade_no"] == payment.number
    assert _query(response["Location"])["notify_url"] == settings.SITE_URL + "/pay/notify/other/"


def test_pending_order_pays_from_the_wallet_with_the_balance_choice(client: Client) -> None:
    buyer = _logged_in(client, "10.00")
    sku, _ = _stocked()
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order

    response = client.post(reverse("web:order_pay", args=[order.number]), {"channel": "balance"})

    assert response["Location"] == reverse("web:order_detail", args=[order.number])
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=buyer.pk) == Decimal("2.00")


def test_paying_another_buyers_order_is_404_and_starts_nothing(client: Client) -> None:
    owner = UserFactory.create()
    _logged_in(client)
    sku, _ = _stocked()
    _epay()
    order = order_checkout(buyer_id=owner.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order

    response = client.post(reverse("web:order_pay", args=[order.number]), {"channel": "epay"})

    assert response.status_code == 404
    assert not Payment.objects.exists()


def test_buying_with_a_disabled_or_unknown_channel_is_404_and_creates_no_order(client: Client) -> None:
    _logged_in(client)
    sku, _ = _stocked()
    _epay(is_enabled=False)

    disabled = _buy(client, sku, "epay")
    unknown = _buy(client, sku, "nope", request_id="req-2")

    assert (disabled.status_code, unknown.status_code) == (404, 404)
    assert "支付方式不存在或已停用" in disabled.content.decode()
    assert not Order.objects.exists()
    assert not CardKey.objects.filter(status=CardKeyStatus.RESERVED).exists()


def test_amount_outside_the_channel_limits_is_400_with_the_message(client: Client) -> None:
    _logged_in(client)
    sku, _ = _stocked()
    _epay(min_amount=Decimal("20.00"), max_amount=Decimal("500.00"))

    response = _buy(client, sku, "epay")

    assert response.status_code == 400
    assert "「易支付」单笔金额需在 ¥20.00–¥500.00 之间，请换一种支付方式" in response.content.decode()
    assert not Order.objects.exists()
    assert not Payment.objects.exists()


def test_pending_order_paid_with_a_channel_refusing_its_amount_is_400(client: Client) -> None:
    buyer = _logged_in(client)
    sku, _ = _stocked()
    _epay(max_amount=Decimal("5.00"))
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order

    response = client.post(reverse("web:order_pay", args=[order.number]), {"channel": "epay"})

    assert response.status_code == 400
    assert "单笔金额需在" in response.content.decode()
    assert not Payment.objects.exists()


def test_paying_a_delivered_order_with_a_channel_is_409(client: Client) -> None:
    buyer = _logged_in(client, "20.00")
    sku, _ = _stocked()
    _epay()
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order

    response = client.post(reverse("web:order_pay", args=[order.number]), {"channel": "epay"})

    assert response.status_code == 409
    assert not Payment.objects.exists()


def test_late_payment_lands_in_the_wallet_and_the_order_page_says_so(client: Client) -> None:
    buyer = _logged_in(client)
    sku, _ = _stocked(count=2)
    _epay()
    _buy(client, sku, "epay")
    order = Order.objects.get()
    payment = Payment.objects.get()
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert order_expire(order_id=order.pk)
    assert CardKey.objects.filter(sku=sku, status=CardKeyStatus.AVAILABLE).count() == 2

    answer = payment_notification_process(channel_code="epay", params=_notify_params(payment))

    assert (answer.status, answer.outcome) == (200, NotificationOutcome.CREDITED)
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert wallet_balance(user_id=buyer.pk) == Decimal("16.00")
    assert CardKey.objects.filter(sku=sku, status=CardKeyStatus.AVAILABLE).count() == 2
    assert not CardKey.objects.filter(order=order).exists()
    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    assert 'data-testid="paid-into-wallet"' in body
    assert "已到账，但订单未能完成" in body
    assert re.search(r'data-testid="order-note">.*款项已存入您的钱包余额', body)
    assert _keys_on_page(body) == []
    assert 'data-testid="pending-actions"' not in body


def test_late_payment_note_is_in_english_for_english_buyers(client: Client) -> None:
    buyer = _logged_in(client)
    sku, _ = _stocked()
    channel = _epay()
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    payment = Payment.objects.create(number="P-LATE-1", user=buyer, channel=channel, purpose="order", order=order,
                                     amount=order.total_amount)
    client.post(reverse("web:order_cancel", args=[order.number]))
    payment_notification_process(channel_code="epay", params=_notify_params(payment))
    client.post(reverse("set_language"), {"language": "en", "next": "/"})

    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()

    assert "has arrived but the order could not be completed" in body
    assert wallet_balance(user_id=buyer.pk) == Decimal("8.00")
