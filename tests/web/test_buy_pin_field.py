"""The buy form's 支付密码 field for a buyer with a PIN and a password-free limit: rendered whenever some SKU ×
quantity of the product could go over the limit (not only when the pre-selected one does), with what
web/buy-form.js needs to show it only while the chosen total is over the limit."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from kameng.accounts.models import User
from kameng.accounts.paypin import password_free_limit_set, payment_pin_set
from kameng.catalog.models import Product
from kameng.orders.models import Order
from tests.factories import ProductFactory, SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-9"
PIN = "583920"


def _buyer(client: Client, *, pin: str | None = PIN, limit: str = "20.00") -> User:
    buyer = UserFactory.create()
    fund_wallet(buyer, "500.00")
    if pin is not None:
        payment_pin_set(user_id=buyer.pk, new_pin=pin, password=PASSWORD)
        password_free_limit_set(user_id=buyer.pk, limit_text=limit, pin=pin)
    client.force_login(buyer)
    return buyer


def _product(*prices: str, max_quantity: int = 10, stocked: bool = True) -> tuple[Product, list[Any]]:
    product = ProductFactory.create(max_quantity=max_quantity)
    skus = []
    for price in prices:
        sku = SkuFactory.create(product=product, price=Decimal(price), name=f"{price} 元")
        stock_sku(sku, 5 if stocked else 0)
        skus.append(sku)
    return product, skus


def _page(client: Client, product: Product) -> str:
    response = client.get(reverse("web:product", args=[product.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_dearer_sku_than_the_pre_selected_one_renders_the_field_with_the_limit(client: Client) -> None:
    _buyer(client)
    product, (cheap, dear) = _product("5.00", "50.00")

    body = _page(client, product)

    assert re.search(rf'value="{cheap.pk}"[^>]*data-price="5.00"[^>]*checked', body)  # 5.00 ≤ 20.00 pre-selected
    assert f'value="{dear.pk}" data-testid="sku-{dear.pk}" data-price="50.00"' in body
    field = re.search(r'<div class="field[^"]*" data-testid="pin-field"([^>]*)>', body)
    assert field is not None
    assert field.group(1) == ' data-pin-limit="20.00"'
    assert 'data-testid="pin-input"' in body
    assert "钱包支付超过免密额度 ¥20.00 时需要输入支付密码" in body  # the hint, for a page without JavaScript
    assert re.search(r'<script src="[^"]*web/buy-form[^"]*\.js" defer></script>', body)


def test_a_larger_quantity_alone_renders_the_field(client: Client) -> None:
    _buyer(client)
    product, _ = _product("5.00", max_quantity=5)  # 5 × ¥5.00 = ¥25.00 > ¥20.00

    assert 'data-pin-limit="20.00"' in _page(client, product)


def test_no_field_when_no_choice_can_go_over_the_limit(client: Client) -> None:
    _buyer(client)
    product, _ = _product("5.00", max_quantity=4)  # at most ¥20.00: password-free
    sold_out, _ = _product("5.00", max_quantity=4)
    SkuFactory.create(product=sold_out, price=Decimal("90.00"), name="90 元")  # no stock: cannot be chosen

    assert 'data-testid="pin-field"' not in _page(client, product)
    assert 'data-testid="pin-field"' not in _page(client, sold_out)
    assert "buy-form.js" not in _page(client, product)


def test_no_field_for_a_buyer_without_a_pin(client: Client) -> None:
    _buyer(client, pin=None)
    product, _ = _product("5.00", "50.00")

    assert 'data-testid="pin-field"' not in _page(client, product)


def test_without_a_limit_the_field_is_always_shown_and_needs_no_script(client: Client) -> None:
    buyer = UserFactory.create()
    payment_pin_set(user_id=buyer.pk, new_pin=PIN, password=PASSWORD)
    client.force_login(buyer)
    product, _ = _product("5.00")

    body = _page(client, product)

    assert 'data-testid="pin-field">' in body  # no data-pin-limit: every wallet payment needs the PIN
    assert "buy-form.js" not in body


def test_a_refused_pin_keeps_the_field_shown(client: Client) -> None:
    buyer = _buyer(client)
    product, (_, dear) = _product("5.00", "50.00")

    refused = client.post(reverse("web:buy", args=[product.pk]), {
        "sku": dear.pk, "quantity": 1, "request_id": "form-1", "payment_method": "balance"})
    paid = client.post(reverse("web:buy", args=[product.pk]), {
        "sku": dear.pk, "quantity": 1, "request_id": "form-2", "payment_method": "balance", "pin": PIN})

    assert refused.status_code == 403
    assert 'data-pin-limit="20.00" data-pin-keep="1"' in refused.content.decode()
    assert paid.status_code == 302
    assert Order.objects.filter(buyer=buyer).count() == 1
