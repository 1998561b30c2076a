"""Redeeming points at checkout: the price function's offset, debited once in the checkout transaction as a points
journal, refused cleanly (nothing written) when the points or the way of paying do not allow it, and given back in
proportion to the cash refunded."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from kameng.core.errors import ApplicationError
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order
from kameng.orders.refunds import order_refund_to_wallet
from kameng.points.models import OrderPoints
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.points.support import LISTENER, give_points, points_balance, points_journals

pytestmark = pytest.mark.django_db
REDEEM, RETURN = JournalKind.POINTS_REDEEM, JournalKind.POINTS_REDEEM_RETURN


@pytest.fixture(autouse=True)
def _listening(settings: Settings) -> None:
    settings.KAMENG_ORDER_AFTERCARE = [LISTENER]


def _setup(points: int, wallet: str = "100.00", price: str = "9.50") -> tuple[Any, Any]:
    buyer = UserFactory.create()
    fund_wallet(buyer, wallet)
    give_points(buyer.pk, points)
    sku = SkuFactory.create(price=Decimal(price))
    stock_sku(sku, 5)
    return buyer, sku


def _buy(buyer_id: int, sku_id: int, *, quantity: int = 2, points: int, request_id: str = "p-1",
         payment: PaymentChoice | None = None) -> Order:
    return purchase_create(buyer_id=buyer_id, sku_id=sku_id, quantity=quantity, request_id=request_id,
                           payment=payment or PaymentChoice(PayBy.WALLET), points=points).order


def test_points_offset_the_cash_and_are_debited_with_the_order() -> None:
    buyer, sku = _setup(800)

    order = _buy(buyer.pk, sku.pk, points=500)

    assert (order.total_amount, order.points_redeemed, order.points_offset) == (
        Decimal("14.00"), 500, Decimal("5.00"))  # ¥19.00 less 500 points at 100 a yuan
    assert wallet_balance(user_id=buyer.pk) == Decimal("86.00")
    assert points_balance(user_id=buyer.pk) == 300
    assert points_journals(REDEEM) == [(REDEEM, order.number, 500)]
    assert {entry.amount for entry in Journal.objects.get(kind=JournalKind.ORDER_PAYMENT).entries.all()} == {
        Decimal("14.00")}


def test_points_beyond_the_cap_are_not_taken() -> None:
    buyer, sku = _setup(5000)

    order = _buy(buyer.pk, sku.pk, points=5000)

    assert (order.total_amount, order.points_redeemed, order.points_offset) == (
        Decimal("9.50"), 950, Decimal("9.50"))  # at most half of ¥19.00
    assert points_balance(user_id=buyer.pk) == 4050


def test_too_few_points_is_a_400_and_nothing_is_written() -> None:
    buyer, sku = _setup(100)

    with pytest.raises(ApplicationError) as error:
        _buy(buyer.pk, sku.pk, points=500)

    assert (error.value.code, error.value.status_code) == ("insufficient_points", 400)
    assert error.value.message == "积分不足：需要 500 积分，当前可用 100 积分"
    assert Order.objects.count() == 0
    assert points_journals(REDEEM) == []
    assert wallet_balance(user_id=buyer.pk) == Decimal("100.00")
    assert points_balance(user_id=buyer.pk) == 100
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 5


@pytest.mark.parametrize("payment", [PaymentChoice(PayBy.RESERVE), PaymentChoice.gateway("epay")])
def test_points_need_the_wallet_to_pay(payment: PaymentChoice) -> None:
    buyer, sku = _setup(800)

    with pytest.raises(ApplicationError) as error:
        _buy(buyer.pk, sku.pk, points=500, payment=payment)

    assert (error.value.code, error.value.status_code) == ("points_need_wallet", 400)
    assert Order.objects.count() == 0
    assert points_balance(user_id=buyer.pk) == 800


def test_a_wallet_short_of_the_rest_spends_no_points() -> None:
    buyer, sku = _setup(800, wallet="10.00")

    with pytest.raises(ApplicationError) as error:  # ¥14.00 to pay, ¥10.00 in the wallet
        _buy(buyer.pk, sku.pk, points=500, payment=PaymentChoice(PayBy.WALLET_OR_RESERVE))

    assert error.value.code == "insufficient_balance"
    assert Order.objects.count() == 0
    assert points_balance(user_id=buyer.pk) == 800


def test_a_replayed_request_debits_the_points_once() -> None:
    buyer, sku = _setup(800)
    first = _buy(buyer.pk, sku.pk, points=500, request_id="same")

    again = purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=2, request_id="same",
                            payment=PaymentChoice(PayBy.WALLET), points=500)

    assert (again.created, again.order.pk) == (False, first.pk)
    assert points_balance(user_id=buyer.pk) == 300
    assert points_journals(REDEEM) == [(REDEEM, first.number, 500)]


def test_refunds_give_the_points_back_in_proportion_to_the_cash(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    buyer, sku = _setup(800)
    with django_capture_on_commit_callbacks(execute=True):
        order = _buy(buyer.pk, sku.pk, points=500)  # ¥14.00 paid, earns 14
    assert points_balance(user_id=buyer.pk) == 300 + 14

    with django_capture_on_commit_callbacks(execute=True):
        order_refund_to_wallet(order_id=order.pk, amount=Decimal("4.99"), reference="r-1")
    # floor(500 × 4.99 / 14.00) = 178 back; kept ¥9.01 earns 9 (5 taken back)
    assert points_balance(user_id=buyer.pk) == 300 + 178 + 9
    with django_capture_on_commit_callbacks(execute=True):
        order_refund_to_wallet(order_id=order.pk, amount=Decimal("9.01"), reference="r-2")

    assert points_balance(user_id=buyer.pk) == 800  # every used point back, every earned point gone
    assert points_journals(RETURN) == [(RETURN, f"order:{order.number}:2", 178),
                                       (RETURN, f"order:{order.number}:4", 322)]
    record = OrderPoints.objects.get(order=order)
    assert (record.earned, record.returned, record.shortfall) == (0, 500, 0)
    assert wallet_balance(user_id=buyer.pk) == Decimal("100.00")


def test_the_buy_form_shows_the_points_and_uses_them(client: Client) -> None:
    buyer, sku = _setup(800)
    client.force_login(buyer)

    page = client.get(f"/products/{sku.product_id}/").content.decode()
    assert 'data-testid="points-usable"' in page
    assert "可用积分 800，本单最多可用 475 积分，抵扣 ¥4.75" in page  # half of one ¥9.50

    response = client.post(f"/products/{sku.product_id}/buy/", {
        "sku": sku.pk, "quantity": 2, "request_id": "web-points", "payment_method": "balance", "points": 300})

    assert response.status_code == 302
    order = Order.objects.get()
    assert (order.total_amount, order.points_redeemed) == (Decimal("16.00"), 300)
    detail = client.get(response["Location"]).content.decode()
    assert 'data-testid="order-points-redeemed"' in detail
    assert "300 积分抵扣 ¥3.00" in detail
    assert 'data-testid="order-points-earned"' in detail  # 16, booked after commit


def test_the_buy_form_refuses_points_it_cannot_take(client: Client) -> None:
    buyer, sku = _setup(100)
    client.force_login(buyer)

    response = client.post(f"/products/{sku.product_id}/buy/", {
        "sku": sku.pk, "quantity": 2, "request_id": "web-short", "payment_method": "balance", "points": 500})

    assert response.status_code == 400
    assert "积分不足：需要 500 积分，当前可用 100 积分" in response.content.decode()
    assert Order.objects.count() == 0


def test_the_api_takes_points_and_shows_the_statement(client: Client) -> None:
    buyer, sku = _setup(800)
    client.force_login(buyer)

    response = client.post("/api/v1/shop/orders", data=json.dumps(
        {"sku_id": sku.pk, "quantity": 2, "request_id": "api-points", "points": 500}),
        content_type="application/json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["total_amount"], body["points_redeemed"], body["points_offset"]) == ("14.00", 500, "5.00")
    points = client.get("/api/v1/shop/points").json()
    assert points["balance"] == 300
    assert [(row["kind"], row["order_number"], row["points"]) for row in points["statement"]] == [
        ("points_redeem", body["number"], -500), ("points_earn", "", 800)]


def test_the_api_refuses_points_without_the_wallet(client: Client) -> None:
    buyer, sku = _setup(800)
    client.force_login(buyer)

    response = client.post("/api/v1/shop/orders", data=json.dumps(
        {"sku_id": sku.pk, "quantity": 2, "points": 500, "pay_with_wallet": False}),
        content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "points_need_wallet"
    assert Order.objects.count() == 0


def test_the_pin_threshold_is_checked_against_what_the_wallet_pays_after_points() -> None:
    from kameng.accounts.paypin import password_free_limit_set, payment_pin_set

    buyer, sku = _setup(800)
    buyer.set_password("correct-horse-9")
    buyer.save()
    payment_pin_set(user_id=buyer.pk, new_pin="582046", password="correct-horse-9")
    password_free_limit_set(user_id=buyer.pk, limit_text="15.00", pin="582046")

    with pytest.raises(ApplicationError) as error:  # ¥19.00 without points: above the password-free ¥15.00
        _buy(buyer.pk, sku.pk, points=0, request_id="no-points")
    assert error.value.code == "pin_required"

    order = _buy(buyer.pk, sku.pk, points=500, request_id="with-points")  # ¥14.00 after points: password-free

    assert (order.total_amount, order.points_redeemed) == (Decimal("14.00"), 500)
