"""The status groups (keys visible, in progress, unpaid) are the orders domain's, and the order page, the keys.txt
download and the JSON API answer the same for every status.

The expected table is written out here: a buyer keeps seeing the keys they still hold (delivered, completed, while
after-sales handles a report, after a partial refund), not once the order is fully refunded.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from kameng.orders.state import IN_PROGRESS, KEYS_VISIBLE, UNPAID
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

S = OrderStatus
# status: (keys visible, in progress, unpaid)
GROUPS: dict[str, tuple[bool, bool, bool]] = {
    S.PENDING_PAYMENT: (False, True, True),
    S.PAID: (False, True, False),
    S.UNDER_REVIEW: (False, True, False),
    S.FULFILLING: (False, True, False),
    S.DELIVERED: (True, False, False),
    S.COMPLETED: (True, False, False),
    S.AFTER_SALES: (True, False, False),
    S.PARTIALLY_REFUNDED: (True, False, False),
    S.REFUNDED: (False, False, False),
    S.DELIVERY_FAILED: (False, False, False),
    S.EXPIRED: (False, False, True),
    S.CANCELLED: (False, False, True),
}


def test_the_table_covers_every_status() -> None:
    assert set(GROUPS) == set(OrderStatus.values)


@pytest.mark.parametrize(("status", "groups"), GROUPS.items())
def test_each_status_is_in_the_groups_the_table_says(status: str, groups: tuple[bool, bool, bool]) -> None:
    assert (status in KEYS_VISIBLE, status in IN_PROGRESS, status in UNPAID) == groups


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "groups"), GROUPS.items())
def test_the_order_page_the_download_and_the_api_agree(client: Client, status: str,
                                                       groups: tuple[bool, bool, bool]) -> None:
    is_keys_visible, is_in_progress, _ = groups
    buyer = UserFactory.create()
    fund_wallet(buyer, "20.00")
    sku = SkuFactory.create(price=Decimal("8.00"))
    secrets = stock_sku(sku, 2)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=2).order
    Order.objects.filter(pk=order.pk).update(status=status)
    client.force_login(buyer)
    expected = secrets if is_keys_visible else []

    page = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    download = client.get(reverse("web:order_keys_txt", args=[order.number]))
    api = client.get(f"/api/v1/shop/orders/{order.number}")

    # Which stocked key an order gets is the claim's business (PostgreSQL's import stores them in fingerprint order).
    assert sorted(re.findall(r'<code data-testid="card-key">([^<]+)</code>', page)) == sorted(expected)
    assert ('hx-trigger="every 3s"' in page) is is_in_progress
    assert download.status_code == (200 if is_keys_visible else 409)
    if is_keys_visible:
        assert sorted(download.content.decode().splitlines()) == sorted(secrets)
    assert api.status_code == 200
    assert sorted(json.loads(api.content)["secrets"]) == sorted(expected)
