"""GET /api/v1/shop/orders/{number} carries the order's timeline: kind, text in the caller's language, time."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from kameng.orders.services import order_checkout
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db


def _timeline(client: Client, number: str) -> list[tuple[str, str, str, str]]:
    response = client.get(f"/api/v1/shop/orders/{number}")
    assert response.status_code == 200
    return [(event["kind"], event["text"], event["from_status"], event["to_status"])
            for event in json.loads(response.content)["timeline"]]


def test_the_order_answer_has_its_timeline_in_chinese_or_english(client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "20.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order
    client.force_login(buyer)

    chinese = _timeline(client, order.number)
    client.cookies["django_language"] = "en"
    english = _timeline(client, order.number)

    assert chinese == [
        ("created", "订单已创建，等待支付", "", "pending_payment"),
        ("wallet_paid", "已使用钱包余额支付", "pending_payment", "paid"),
        ("delivered", "已发货，卡密已到账", "paid", "delivered"),
    ]
    assert english == [
        ("created", "Order created, awaiting payment", "", "pending_payment"),
        ("wallet_paid", "Paid from wallet balance", "pending_payment", "paid"),
        ("delivered", "Delivered: your card keys are ready", "paid", "delivered"),
    ]


def test_the_checkout_answer_stays_without_a_timeline(client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "20.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1)
    client.force_login(buyer)

    response = client.post("/api/v1/shop/orders", data=json.dumps({"sku_id": sku.pk, "quantity": 1}),
                           content_type="application/json")

    assert response.status_code == 201
    assert "timeline" not in json.loads(response.content)
