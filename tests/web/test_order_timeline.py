"""The order page's timeline is rendered from the typed events, in the language the buyer chose."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from kameng.orders.refunds import order_refund_to_wallet
from kameng.orders.services import order_checkout
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db


def _timeline(body: str) -> list[str]:
    section = body.split('data-testid="order-timeline"', 1)[1].split("</ol>", 1)[0]
    return re.findall(r"</time> <span>([^<]*)</span>", section)


def test_a_partly_refunded_order_reads_in_chinese_and_english_and_keeps_its_keys(client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "50.00")
    sku = SkuFactory.create(price=Decimal("25.00"))
    secrets = stock_sku(sku, 2)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=2).order
    order_refund_to_wallet(order_id=order.pk, amount=Decimal("25.00"), reference="R-TIMELINE-1", reason="卡密无效")
    client.force_login(buyer)
    url = reverse("web:order_detail", args=[order.number])

    chinese = client.get(url).content.decode()
    client.cookies["django_language"] = "en"
    english = client.get(url).content.decode()

    assert _timeline(chinese) == ["订单已创建，等待支付", "已使用钱包余额支付", "已发货，卡密已到账",
                                  "已退款 ¥25.00 到钱包余额（卡密无效）"]
    assert _timeline(english) == ["Order created, awaiting payment", "Paid from wallet balance",
                                  "Delivered: your card keys are ready",
                                  # the reason is one of the after-sales reasons, which the catalogue knows
                                  "Refunded ¥25.00 to your wallet balance (Card key invalid)"]
    assert sorted(re.findall(r'<code data-testid="card-key">([^<]+)</code>', english)) == sorted(secrets)
