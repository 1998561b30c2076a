"""The buy form's quantity: an out-of-bounds quantity is answered with the product's own bounds, the ones printed
under the field, never the form's internal input limit."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db


def _quantity_errors(page: str) -> list[str]:
    return re.findall(r'<small class="field-error">([^<]*)</small>', page)


@pytest.mark.parametrize("quantity", ["99999", "21", "0", "-3", str(10**30)])
def test_a_quantity_out_of_bounds_is_refused_with_the_products_bounds(client: Client, quantity: str) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    client.force_login(buyer)
    sku = SkuFactory.create(product__min_quantity=1, product__max_quantity=20, price=Decimal("1.00"))
    stock_sku(sku, 30)

    response = client.post(reverse("web:buy", args=[sku.product_id]),
                           {"sku": sku.pk, "quantity": quantity, "request_id": "req-1"})

    page = response.content.decode()
    assert response.status_code == 400
    assert _quantity_errors(page) == ["购买数量需在 1–20 之间（每单 1–20 件）"]
    assert "10000" not in " ".join(_quantity_errors(page))
    assert "每单 1–20 件" in page
    assert Order.objects.count() == 0
    assert wallet_balance(user_id=buyer.pk) == Decimal("100.00")


@override_settings(KAMENG_MAX_ORDER_QUANTITY=8)
def test_the_site_wide_cap_is_the_bound_shown_and_checked(client: Client) -> None:
    client.force_login(UserFactory.create())
    sku = SkuFactory.create(product__min_quantity=2, product__max_quantity=20)
    stock_sku(sku, 30)

    page = client.get(reverse("web:product", args=[sku.product_id])).content.decode()
    response = client.post(reverse("web:buy", args=[sku.product_id]),
                           {"sku": sku.pk, "quantity": "9", "request_id": "req-1"})

    assert re.search(r'name="quantity"[^>]*min="2"', page)
    assert re.search(r'name="quantity"[^>]*max="8"', page)
    assert "每单 2–8 件" in page
    assert response.status_code == 400
    assert _quantity_errors(response.content.decode()) == ["购买数量需在 2–8 之间（每单 2–8 件）"]
    assert Order.objects.count() == 0
