"""Wallet payments and the payment PIN: the purchase service, the order payment from the wallet, the JSON API and
the storefront forms ask for it above the password-free limit, and a refusal leaves nothing behind."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from kameng.accounts.models import User
from kameng.accounts.paypin import (
    PinLockedError,
    PinRequiredError,
    PinWrongError,
    password_free_limit_set,
    payment_pin_set,
    pin_settings_of,
)
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.models import Journal
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from kameng.payments.models import ChannelKind, PaymentChannel
from kameng.payments.services import order_pay_from_wallet, order_payment_start
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-9"
PIN = "583920"
API = "/api/v1/shop/orders"


def _buyer(*, funds: str = "100.00", pin: str | None = PIN, limit: str = "0") -> User:
    buyer = UserFactory.create()
    fund_wallet(buyer, funds)
    if pin is not None:
        payment_pin_set(user_id=buyer.pk, new_pin=pin, password=PASSWORD)
        if limit != "0":
            password_free_limit_set(user_id=buyer.pk, limit_text=limit, pin=pin)
    buyer.refresh_from_db()
    return buyer


def _sku(price: str = "10.00", count: int = 5) -> Any:
    sku = SkuFactory.create(price=Decimal(price))
    stock_sku(sku, count)
    return sku


def _buy(buyer: User, sku: Any, *, quantity: int = 1, pin: str | None = None, by: PayBy = PayBy.WALLET,
         request_id: str | None = None) -> Any:
    return purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity, request_id=request_id,
                           payment=PaymentChoice(by, pin=pin))


def _nothing_written(buyer: User, balance: str = "100.00") -> None:
    assert not Order.objects.filter(buyer=buyer).exists()
    assert not Journal.objects.filter(kind="order_payment").exists()
    assert not CardKey.objects.exclude(status=CardKeyStatus.AVAILABLE).exists()
    assert wallet_balance(user_id=buyer.pk) == Decimal(balance)


def test_a_buyer_without_a_pin_pays_from_the_wallet_as_before() -> None:
    buyer = _buyer(pin=None)

    result = _buy(buyer, _sku("80.00"))

    assert result.order.status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=buyer.pk) == Decimal("20.00")


def test_with_a_pin_and_no_limit_every_wallet_payment_needs_it_and_nothing_is_written_without() -> None:
    buyer = _buyer()
    sku = _sku("0.01")

    with pytest.raises(PinRequiredError):
        _buy(buyer, sku)

    _nothing_written(buyer)


def test_the_limit_is_inclusive_and_one_fen_over_needs_the_pin() -> None:
    buyer = _buyer(limit="20.00")
    at_limit = _sku("10.00")
    over = _sku("20.01")

    paid = _buy(buyer, at_limit, quantity=2)  # 2 × 10.00 == 20.00: password-free
    with pytest.raises(PinRequiredError) as required:
        _buy(buyer, over)

    assert paid.order.status == OrderStatus.DELIVERED
    assert required.value.extra == {"amount": "20.01", "password_free_limit": "20.00"}
    assert Order.objects.filter(buyer=buyer).count() == 1
    assert wallet_balance(user_id=buyer.pk) == Decimal("80.00")
    assert _buy(buyer, over, pin=PIN).order.status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=buyer.pk) == Decimal("59.99")


def test_a_wrong_pin_writes_nothing_and_says_the_tries_left() -> None:
    buyer = _buyer()

    with pytest.raises(PinWrongError) as wrong:
        _buy(buyer, _sku(), pin="000001")

    assert wrong.value.extra == {"tries_left": 4}
    _nothing_written(buyer)


def test_a_locked_pin_refuses_even_the_right_one_and_writes_nothing() -> None:
    buyer = _buyer()
    sku = _sku()
    for _ in range(4):
        with pytest.raises(PinWrongError):
            _buy(buyer, sku, pin="000001")
    with pytest.raises(PinLockedError):
        _buy(buyer, sku, pin="000001")

    with pytest.raises(PinLockedError):
        _buy(buyer, sku, pin=PIN)

    _nothing_written(buyer)


def test_wallet_or_reserve_asks_the_pin_only_when_the_wallet_would_pay() -> None:
    buyer = _buyer(funds="5.00")
    sku = _sku("10.00")

    reserved = _buy(buyer, sku, by=PayBy.WALLET_OR_RESERVE)  # the wallet cannot pay: no PIN needed to reserve
    assert reserved.order.status == OrderStatus.PENDING_PAYMENT
    fund_wallet(buyer, "20.00", reference="more")
    with pytest.raises(PinRequiredError):
        _buy(buyer, sku, by=PayBy.WALLET_OR_RESERVE)
    paid = _buy(buyer, sku, by=PayBy.WALLET_OR_RESERVE, pin=PIN)

    assert paid.order.status == OrderStatus.DELIVERED
    assert Order.objects.filter(buyer=buyer).count() == 2
    assert wallet_balance(user_id=buyer.pk) == Decimal("15.00")


def test_reserving_and_gateways_never_ask_the_pin() -> None:
    buyer = _buyer()

    result = _buy(buyer, _sku(), by=PayBy.RESERVE)

    assert result.order.status == OrderStatus.PENDING_PAYMENT


def test_paying_a_pending_order_from_the_wallet_needs_the_pin_above_the_limit() -> None:
    buyer = _buyer(limit="9.99")
    sku = _sku("10.00")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order

    with pytest.raises(PinRequiredError):
        order_pay_from_wallet(order_id=order.pk, buyer_id=buyer.pk)
    with pytest.raises(PinWrongError):
        order_pay_from_wallet(order_id=order.pk, buyer_id=buyer.pk, pin="000001")
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert wallet_balance(user_id=buyer.pk) == Decimal("100.00")

    paid = order_pay_from_wallet(order_id=order.pk, buyer_id=buyer.pk, pin=PIN,
                                 pin_settings=pin_settings_of(buyer))

    assert paid.status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=buyer.pk) == Decimal("90.00")


def test_a_balance_channel_asks_the_pin_too() -> None:
    PaymentChannel.objects.create(code="wallet", name="余额", kind=ChannelKind.BALANCE)
    buyer = _buyer()
    order = order_checkout(buyer_id=buyer.pk, sku_id=_sku().pk, quantity=1, pay_with_wallet=False).order

    with pytest.raises(PinRequiredError):
        order_payment_start(order_id=order.pk, buyer_id=buyer.pk, channel_code="wallet")
    started = order_payment_start(order_id=order.pk, buyer_id=buyer.pk, channel_code="wallet", pin=PIN)

    assert started.is_paid


# --- the JSON API ------------------------------------------------------------------------------------------------

def _api(buyer: User, payload: dict[str, object]) -> tuple[int, dict[str, Any]]:
    client = Client()
    client.force_login(buyer)
    response = client.post(API, data=json.dumps(payload), content_type="application/json")
    return response.status_code, response.json()


def test_api_answers_403_400_429_and_201() -> None:
    buyer = _buyer()
    sku = _sku()
    order = {"sku_id": sku.pk, "quantity": 1}

    required = _api(buyer, order)
    wrong = _api(buyer, {**order, "pin": "000001"})
    for _ in range(3):
        _api(buyer, {**order, "pin": "000001"})
    locked = _api(buyer, {**order, "pin": "000001"})

    assert required[0] == 403
    assert required[1]["code"] == "pin_required"
    assert wrong[0] == 400
    assert wrong[1]["code"] == "pin_wrong"
    assert wrong[1]["extra"] == {"tries_left": 4}
    assert locked[0] == 429
    assert locked[1]["code"] == "pin_locked"
    assert set(locked[1]["extra"]) == {"retry_after", "unlocks_at"}
    _nothing_written(buyer)


def test_api_pays_with_the_right_pin_and_without_one_under_the_limit() -> None:
    buyer = _buyer(limit="10.00")
    sku = _sku("10.00")

    free = _api(buyer, {"sku_id": sku.pk, "quantity": 1})
    with_pin = _api(buyer, {"sku_id": sku.pk, "quantity": 2, "pin": PIN})

    assert (free[0], with_pin[0]) == (201, 201)
    assert len(with_pin[1]["secrets"]) == 2
    assert wallet_balance(user_id=buyer.pk) == Decimal("70.00")


# --- the storefront ----------------------------------------------------------------------------------------------

def _logged_in(client: Client, buyer: User) -> User:
    client.force_login(buyer)
    return buyer


def _post_buy(client: Client, sku: Any, **extra: object) -> Any:
    return client.post(reverse("web:buy", args=[sku.product_id]),
                       {"sku": sku.pk, "quantity": 1, "request_id": "form-1", "payment_method": "balance", **extra})


def test_the_product_page_shows_the_pin_field_when_the_total_needs_it(client: Client) -> None:
    buyer = _logged_in(client, _buyer(limit="10.00"))
    small = _sku("10.00")
    small.product.max_quantity = 1  # no SKU × quantity of it goes over the limit
    small.product.save()
    large = _sku("10.01")

    assert 'data-testid="pin-input"' not in client.get(reverse("web:product", args=[small.product_id])).content.decode()
    assert 'data-testid="pin-input"' in client.get(reverse("web:product", args=[large.product_id])).content.decode()
    assert buyer.payment_pin


def test_the_buy_form_without_the_pin_is_refused_with_the_field_and_nothing_written(client: Client) -> None:
    buyer = _logged_in(client, _buyer())
    sku = _sku()

    refused = _post_buy(client, sku)
    wrong = _post_buy(client, sku, pin="000001")

    assert refused.status_code == 403
    body = refused.content.decode()
    assert 'data-testid="pin-input"' in body
    assert "请输入 6 位支付密码" in body
    assert wrong.status_code == 400
    assert "还可以再试 4 次" in wrong.content.decode()
    assert 'name="pin" value' not in wrong.content.decode()  # the PIN typed is never sent back
    _nothing_written(buyer)


def test_the_buy_form_with_the_pin_pays(client: Client) -> None:
    buyer = _logged_in(client, _buyer())
    sku = _sku()

    response = _post_buy(client, sku, pin=PIN)

    order = Order.objects.get(buyer=buyer)
    assert response.status_code == 302
    assert response["Location"] == reverse("web:order_detail", args=[order.number])
    assert order.status == OrderStatus.DELIVERED


def test_the_pending_order_page_asks_the_pin_and_pays_with_it(client: Client) -> None:
    buyer = _logged_in(client, _buyer())
    order = order_checkout(buyer_id=buyer.pk, sku_id=_sku().pk, quantity=1, pay_with_wallet=False).order

    page = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    refused = client.post(reverse("web:order_pay", args=[order.number]), {"channel": "balance"})
    paid = client.post(reverse("web:order_pay", args=[order.number]), {"channel": "balance", "pin": PIN})

    assert 'data-testid="pin-input"' in page
    assert refused.status_code == 403
    assert 'data-testid="pin-input"' in refused.content.decode()
    assert paid.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_the_pin_field_sits_with_the_wallet_button_not_among_the_gateway_buttons(client: Client) -> None:
    buyer = _logged_in(client, _buyer())
    PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                  gateway_url="https://pay.example/", merchant_id="1001", merchant_key="k")
    order = order_checkout(buyer_id=buyer.pk, sku_id=_sku().pk, quantity=1, pay_with_wallet=False).order

    page = client.get(reverse("web:order_detail", args=[order.number])).content.decode()

    wallet_form = re.search(r'<form[^>]*class="inline wallet-pay"[^>]*>(.*?)</form>', page, re.DOTALL)
    assert wallet_form is not None
    assert 'data-testid="pin-field"' in wallet_form.group(1)
    assert 'data-testid="pay-with-wallet"' in wallet_form.group(1)
    assert 'data-testid="pay-with-epay"' not in wallet_form.group(1)
    assert page.count('data-testid="pin-field"') == 1


def test_a_locked_pin_says_when_it_unlocks_on_the_page(client: Client) -> None:
    buyer = _logged_in(client, _buyer())
    sku = _sku()
    for _ in range(4):
        _post_buy(client, sku, pin="000001")

    locked = _post_buy(client, sku, pin="000001")
    security = client.get(reverse("web:security")).content.decode()

    assert locked.status_code == 429
    assert re.search(r"请在 \d\d:\d\d 后再试", locked.content.decode())
    assert 'data-testid="pin-locked"' in security
    _nothing_written(buyer)


def test_the_security_page_sets_the_pin_and_the_limit(client: Client) -> None:
    buyer = _logged_in(client, _buyer(pin=None))

    invite = client.get(reverse("web:wallet")).content.decode()
    weak = client.post(reverse("web:security_pin"), {"password": PASSWORD, "new_pin": "123456",
                                                     "new_pin_again": "123456"})
    mismatch = client.post(reverse("web:security_pin"), {"password": PASSWORD, "new_pin": PIN,
                                                         "new_pin_again": "583921"})
    set_pin = client.post(reverse("web:security_pin"), {"password": PASSWORD, "new_pin": PIN,
                                                        "new_pin_again": PIN})
    no_pin_for_limit = client.post(reverse("web:security_limit"), {"limit": "50", "pin": ""})
    set_limit = client.post(reverse("web:security_limit"), {"limit": "50", "pin": PIN})

    assert 'data-testid="set-pin-invite"' in invite
    assert weak.status_code == 400
    assert "过于简单" in weak.content.decode()
    assert mismatch.status_code == 400
    assert set_pin.status_code == 302
    assert no_pin_for_limit.status_code == 403
    assert set_limit.status_code == 302
    buyer.refresh_from_db()
    assert buyer.payment_pin
    assert buyer.password_free_limit == Decimal("50.00")
    page = client.get(reverse("web:security")).content.decode()
    assert 'data-testid="password-free-on"' in page
    wallet = client.get(reverse("web:wallet")).content.decode()
    assert "¥50.00" in wallet


def test_the_security_pages_need_a_login(client: Client) -> None:
    responses = [client.get(reverse("web:security")), client.post(reverse("web:security_pin"), {}),
                 client.post(reverse("web:security_limit"), {})]

    assert [response.status_code for response in responses] == [302, 302, 302]
    assert all("/login/" in response["Location"] for response in responses)


def test_the_storefront_in_english_says_the_pin_refusal_in_english(client: Client) -> None:
    _logged_in(client, _buyer())
    sku = _sku()
    client.cookies["django_language"] = "en"

    response = _post_buy(client, sku, pin="000001")

    assert "Wrong payment PIN. 4 tries left" in response.content.decode()


def test_the_second_payment_confirmation_asks_the_pin_too(client: Client) -> None:
    buyer = _logged_in(client, _buyer())
    PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                  gateway_url="https://pay.example.com/", merchant_id="1001",
                                  merchant_key="in-flight-merchant-key-0123456789")
    order = order_checkout(buyer_id=buyer.pk, sku_id=_sku().pk, quantity=1, pay_with_wallet=False).order
    order_payment_start(order_id=order.pk, buyer_id=buyer.pk, channel_code="epay")

    asked = client.post(reverse("web:order_pay", args=[order.number]), {"channel": "balance", "pin": PIN})
    confirmed_without = client.post(reverse("web:order_pay", args=[order.number]),
                                    {"channel": "balance", "confirm_second_payment": "1"})
    confirmed = client.post(reverse("web:order_pay", args=[order.number]),
                            {"channel": "balance", "confirm_second_payment": "1", "pin": PIN})

    assert asked.status_code == 409
    assert 'data-testid="pin-input"' in asked.content.decode()
    assert confirmed_without.status_code == 403
    assert confirmed.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
