"""The points shop (积分商城): goods exchanged for points as an order paid wholly in points (cash ¥0.00, no money
journal), keys delivered at once, the per-buyer limit and the stock respected, refunded in points."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from kameng.core.errors import ApplicationError
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.refunds import order_refund_to_wallet
from kameng.points.models import PointsExchange, PointsShopItem
from kameng.points.services import points_exchange_create, points_exchange_refund
from tests.factories import SkuFactory, UserFactory, manual_sku, stock_sku
from tests.points.support import give_points, points_balance, points_journals

pytestmark = pytest.mark.django_db
EXCHANGE = JournalKind.POINTS_EXCHANGE


def _item(*, points_price: int = 300, limit: int = 0, keys: int = 3) -> PointsShopItem:
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, keys)
    return PointsShopItem.objects.create(sku=sku, points_price=points_price, per_buyer_limit=limit)


def test_an_exchange_is_an_order_paid_in_points_with_its_keys() -> None:
    buyer = UserFactory.create()
    give_points(buyer.pk, 1000)
    item = _item()

    result = points_exchange_create(buyer_id=buyer.pk, item_id=item.pk, quantity=2, request_id="x-1")

    order = Order.objects.get()
    assert result.created
    assert len(result.secrets) == 2
    assert (order.status, order.total_amount, order.unit_price, order.points_redeemed) == (
        OrderStatus.DELIVERED, Decimal("0.00"), Decimal("0.00"), 600)
    assert order.price_lines == [{"code": "points_exchange", "label": "积分兑换", "amount": "-9.50"}]
    assert [event.kind for event in order.events.all()] == ["created", "points_paid", "delivered"]
    assert points_balance(user_id=buyer.pk) == 400
    assert points_journals(EXCHANGE) == [(EXCHANGE, order.number, 600)]
    assert not Journal.objects.filter(kind=JournalKind.ORDER_PAYMENT).exists()  # no money moved
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert PointsExchange.objects.get().points == 600


def test_a_replayed_exchange_spends_once() -> None:
    buyer = UserFactory.create()
    give_points(buyer.pk, 1000)
    item = _item()
    first = points_exchange_create(buyer_id=buyer.pk, item_id=item.pk, request_id="x-2")

    again = points_exchange_create(buyer_id=buyer.pk, item_id=item.pk, request_id="x-2")

    assert (again.created, again.order.pk, again.secrets) == (False, first.order.pk, first.secrets)
    assert points_balance(user_id=buyer.pk) == 700


def test_too_few_points_sold_out_and_the_limit_write_nothing() -> None:
    buyer = UserFactory.create()
    give_points(buyer.pk, 200)
    item = _item(limit=1, keys=1)

    with pytest.raises(ApplicationError) as short:
        points_exchange_create(buyer_id=buyer.pk, item_id=item.pk)
    assert (short.value.code, short.value.status_code) == ("insufficient_points", 400)
    assert Order.objects.count() == 0
    give_points(buyer.pk, 300, reference="more")

    points_exchange_create(buyer_id=buyer.pk, item_id=item.pk)
    with pytest.raises(ApplicationError) as limited:
        points_exchange_create(buyer_id=buyer.pk, item_id=item.pk)
    assert (limited.value.code, limited.value.status_code) == ("points_exchange_limit", 409)

    other = UserFactory.create()
    give_points(other.pk, 500)
    with pytest.raises(ApplicationError) as sold_out:
        points_exchange_create(buyer_id=other.pk, item_id=item.pk)
    assert (sold_out.value.code, sold_out.value.status_code) == ("sold_out", 409)

    assert Order.objects.count() == 1
    assert (points_balance(user_id=buyer.pk), points_balance(user_id=other.pk)) == (200, 500)


def test_an_inactive_item_and_manual_goods_are_refused() -> None:
    buyer = UserFactory.create()
    give_points(buyer.pk, 5000)
    hidden = _item()
    hidden.is_active = False
    hidden.save()
    manual = PointsShopItem.objects.create(sku=manual_sku("58.00"), points_price=100)

    with pytest.raises(ApplicationError) as missing:
        points_exchange_create(buyer_id=buyer.pk, item_id=hidden.pk)
    with pytest.raises(ApplicationError) as unsupported:
        points_exchange_create(buyer_id=buyer.pk, item_id=manual.pk)

    assert (missing.value.code, missing.value.status_code) == ("points_item_not_found", 404)
    assert (unsupported.value.code, unsupported.value.status_code) == ("points_exchange_unsupported", 400)
    assert Order.objects.count() == 0
    assert points_balance(user_id=buyer.pk) == 5000


def test_an_exchange_is_refunded_in_points_not_money() -> None:
    buyer = UserFactory.create()
    give_points(buyer.pk, 1000)
    item = _item(limit=1)
    order = points_exchange_create(buyer_id=buyer.pk, item_id=item.pk).order

    with pytest.raises(ApplicationError) as money_refund:
        order_refund_to_wallet(order_id=order.pk, amount=Decimal("0.01"), reference="r-x")
    assert money_refund.value.code == "refund_exceeds_paid"

    points_exchange_refund(order_id=order.pk, reason="卡密无效")

    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == (OrderStatus.REFUNDED, Decimal("0.00"))
    assert [event.message for event in order.events.all()][-1] == "已退款，300 积分已退回"
    assert points_balance(user_id=buyer.pk) == 1000
    assert points_journals(JournalKind.POINTS_REDEEM_RETURN) == [
        (JournalKind.POINTS_REDEEM_RETURN, f"order:{order.number}:1", 300)]
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    with pytest.raises(ApplicationError) as twice:
        points_exchange_refund(order_id=order.pk)
    assert twice.value.code == "not_refundable"
    # A refunded exchange no longer counts against the limit.
    points_exchange_create(buyer_id=buyer.pk, item_id=item.pk)
    assert points_balance(user_id=buyer.pk) == 700


def test_the_shop_page_exchanges_and_the_order_page_shows_it(client: Client) -> None:
    buyer = UserFactory.create()
    give_points(buyer.pk, 1000)
    item = _item(limit=2)
    anonymous = client.get("/points/shop/").content.decode()
    assert f'data-testid="points-item-{item.pk}"' in anonymous
    assert "每人限兑 2 件" in anonymous
    client.force_login(buyer)

    response = client.post(f"/points/shop/{item.pk}/exchange/", {"quantity": 1, "request_id": "web-x"})

    assert response.status_code == 302
    order = Order.objects.get()
    assert response["Location"] == f"/orders/{order.number}/"
    detail = client.get(response["Location"]).content.decode()
    assert "300 积分兑换" in detail
    assert "¥0.00" in detail
    statement = client.get("/account/points/").content.decode()
    assert f'href="/orders/{order.number}/"' in statement
    assert "-300" in statement
    assert CardKey.objects.filter(order=order, status=CardKeyStatus.SOLD).count() == 1


def test_the_shop_page_says_why_an_exchange_was_refused(client: Client) -> None:
    buyer = UserFactory.create()
    give_points(buyer.pk, 100)
    item = _item()
    client.force_login(buyer)

    response = client.post(f"/points/shop/{item.pk}/exchange/", {"quantity": 1})
    refused_quantity = client.post(f"/points/shop/{item.pk}/exchange/", {"quantity": 0})

    assert response.status_code == 400
    assert "积分不足：需要 300 积分，当前可用 100 积分" in response.content.decode()
    assert refused_quantity.status_code == 400
    assert Order.objects.count() == 0


def test_the_english_points_pages(client: Client) -> None:
    buyer = UserFactory.create()
    give_points(buyer.pk, 1000)
    _item()
    client.force_login(buyer)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})

    shop = client.get("/points/shop/").content.decode()
    account = client.get("/account/points/").content.decode()

    assert "Points shop" in shop
    assert "积分商城" not in shop
    assert "Points statement" in account
    assert "Points earned" in account
