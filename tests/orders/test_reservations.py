"""Bounds on what unpaid orders may hold (kameng/orders/reservations.py): fresh accounts cannot reserve a SKU's
whole stock, and a buyer paying from the wallet gets keys that are only held by others' unpaid orders near their
deadline. (The race of many unpaid checkouts at once: tests/concurrency/test_unpaid_reservations_race.py.)"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db
URL = "/api/v1/shop/orders"


@pytest.fixture(autouse=True)
def _production_shares(settings: Settings) -> None:
    settings.KAMENG_UNPAID_STOCK_SHARE = 0.5
    settings.KAMENG_UNPAID_STOCK_SHARE_PER_BUYER = 0.25


def _api(user: object, address: str = "203.0.113.7") -> Client:
    client = Client(REMOTE_ADDR=address)
    client.force_login(user)  # type: ignore[arg-type]
    return client


def _post(client: Client, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = client.post(URL, json.dumps(payload), content_type="application/json")
    return response.status_code, response.json()


def test_two_fresh_accounts_cannot_hoard_a_skus_stock_with_unpaid_orders() -> None:
    sku = SkuFactory.create(price=Decimal("1.00"), product__max_quantity=20)
    stock_sku(sku, 100)
    hoarders = [_api(UserFactory.create(), address) for address in ("203.0.113.7", "198.51.100.9")]

    answers = [_post(client, {"sku_id": sku.pk, "quantity": 20, "pay_with_wallet": False})
               for client in hoarders for _ in range(3)]

    assert [status for status, _ in answers] == [201, 409, 409, 201, 409, 409]
    assert {body["code"] for status, body in answers if status == 409} == {"unpaid_stock_share"}
    assert CardKey.objects.filter(status=CardKeyStatus.RESERVED).count() == 40
    payer = UserFactory.create()
    fund_wallet(payer, "60.00")
    status, body = _post(_api(payer), {"sku_id": sku.pk, "quantity": 20})
    assert status == 201
    assert len(body["secrets"]) == 20


def test_unpaid_orders_together_hold_at_most_their_share_of_the_stock() -> None:
    sku = SkuFactory.create(price=Decimal("1.00"), product__max_quantity=20)
    stock_sku(sku, 40)
    buyers = [UserFactory.create() for _ in range(3)]

    statuses = [_post(_api(buyer, f"198.51.100.{index}"), {"sku_id": sku.pk, "quantity": 10,
                                                            "pay_with_wallet": False})[0]
                for index, buyer in enumerate(buyers)]

    assert statuses == [201, 201, 409]  # 20 of 40 held: the third would hold 30
    assert CardKey.objects.filter(status=CardKeyStatus.RESERVED).count() == 20


def test_one_address_holds_a_bounded_number_of_unpaid_orders(settings: Settings) -> None:
    settings.KAMENG_UNPAID_ORDERS_PER_ADDRESS = 2
    sku = SkuFactory.create(price=Decimal("1.00"))
    stock_sku(sku, 100)
    clients = [_api(UserFactory.create(), "192.0.2.44") for _ in range(3)]

    answers = [_post(client, {"sku_id": sku.pk, "quantity": 1, "pay_with_wallet": False}) for client in clients]

    assert [status for status, _ in answers] == [201, 201, 409]
    assert answers[2][1]["code"] == "unpaid_orders_limit_address"
    assert Order.objects.count() == 2
    assert set(Order.objects.values_list("client_ip", flat=True)) == {"192.0.2.44"}


def test_a_wallet_buyer_takes_over_keys_held_by_unpaid_orders_near_their_deadline(settings: Settings) -> None:
    settings.KAMENG_UNPAID_STOCK_SHARE = settings.KAMENG_UNPAID_STOCK_SHARE_PER_BUYER = 1
    sku = SkuFactory.create(price=Decimal("2.00"))
    stock_sku(sku, 6)
    holders = [UserFactory.create() for _ in range(2)]
    held = [order_checkout(buyer_id=holder.pk, sku_id=sku.pk, quantity=3, pay_with_wallet=False).order
            for holder in holders]
    Order.objects.filter(pk=held[0].pk).update(expires_at=timezone.now() + timedelta(seconds=30))
    payer = UserFactory.create()
    fund_wallet(payer, "10.00")

    result = order_checkout(buyer_id=payer.pk, sku_id=sku.pk, quantity=2)

    assert result.created
    assert result.order.status == OrderStatus.DELIVERED
    assert len(result.secrets) == 2
    assert wallet_balance(user_id=payer.pk) == Decimal("6.00")
    # The order near its deadline gave its keys up (and says so); the other one keeps all of its keys.
    assert CardKey.objects.filter(order_id=held[0].pk).count() == 0
    assert CardKey.objects.filter(order_id=held[1].pk, status=CardKeyStatus.RESERVED).count() == 3
    assert held[0].events.latest("id").kind == "reservation_released"
    assert held[0].events.latest("id").message == ("支付时间将到，预留的库存已让给已付款的买家；"
                                                   "如仍需购买，付款时将从现有库存重新分配")
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 1
    assert Order.objects.get(pk=held[0].pk).status == OrderStatus.PENDING_PAYMENT


def test_keys_of_unpaid_orders_far_from_their_deadline_are_not_taken(settings: Settings) -> None:
    settings.KAMENG_UNPAID_STOCK_SHARE = settings.KAMENG_UNPAID_STOCK_SHARE_PER_BUYER = 1
    sku = SkuFactory.create(price=Decimal("2.00"))
    stock_sku(sku, 3)
    holder = UserFactory.create()
    order_checkout(buyer_id=holder.pk, sku_id=sku.pk, quantity=3, pay_with_wallet=False)
    payer = UserFactory.create()
    fund_wallet(payer, "10.00")

    status, body = _post(_api(payer), {"sku_id": sku.pk, "quantity": 1})

    assert (status, body["code"]) == (409, "sold_out")
    assert CardKey.objects.filter(status=CardKeyStatus.RESERVED).count() == 3
    assert wallet_balance(user_id=payer.pk) == Decimal("10.00")
