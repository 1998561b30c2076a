"""What buyers see of membership: member prices on the product page and in the API equal the price function, the
order stores and shows the member line, the membership page and its JSON, and staff's validation of member prices."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from kameng.accounts.models import User
from kameng.catalog.pricing import SALES_CHANNEL_API, SALES_CHANNEL_STOREFRONT, sku_price
from kameng.catalog.selectors import skus_for_sale
from kameng.membership.models import MemberLevel, MemberPrice
from kameng.membership.services import member_prices_changed
from kameng.orders.models import Order
from tests.factories import CategoryFactory, SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.membership.support import levels_install, member_at

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _levels() -> None:
    levels_install()


def _logged_in(rank: int, spend: str) -> tuple[Client, int]:
    buyer = UserFactory.create()
    member_at(buyer, spend, rank)
    client = Client()
    client.force_login(buyer)
    return client, buyer.pk


def test_the_product_page_shows_the_level_price_from_the_price_function() -> None:
    sku = SkuFactory.create(price=Decimal("9.80"))
    stock_sku(sku, 3)
    client, buyer_id = _logged_in(4, "5000.00")

    page = client.get(f"/products/{sku.product_id}/").content.decode()

    quote = sku_price(sku=skus_for_sale(sku_ids=[sku.pk])[sku.pk], buyer_id=buyer_id, quantity=1,
                      sales_channel=SALES_CHANNEL_STOREFRONT)
    assert quote.unit_price == Decimal("9.31")  # 9.80 × 0.95 = 9.31
    assert f'data-testid="member-price-{sku.pk}">VIP4 价 ¥9.31</span>' in page
    assert "¥9.80" in page  # the retail price beside it


def test_a_buyer_without_a_discount_sees_the_retail_price_only() -> None:
    sku = SkuFactory.create(price=Decimal("9.80"))
    client, _ = _logged_in(0, "0.00")

    page = client.get(f"/products/{sku.product_id}/").content.decode()

    assert f'data-testid="price-{sku.pk}">¥9.80</span>' in page
    assert "member-price" not in page


def test_visitors_see_the_lowest_member_price_as_a_hint() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"), floor_price=Decimal("9.50"))

    page = Client().get(f"/products/{sku.product_id}/").content.decode()

    assert f'data-testid="price-{sku.pk}">¥10.00</span>' in page
    # VIP5's 92 折 would be 9.20; the floor price holds it at 9.50.
    assert f'data-testid="member-hint-{sku.pk}">会员最低 ¥9.50</small>' in page


def test_the_order_stores_and_shows_the_member_line() -> None:
    sku = SkuFactory.create(price=Decimal("9.80"))
    stock_sku(sku, 3)
    client, buyer_id = _logged_in(4, "6000.00")
    fund_wallet(User.objects.get(pk=buyer_id), "50.00")

    response = client.post(f"/products/{sku.product_id}/buy/", {
        "sku": sku.pk, "quantity": 2, "request_id": "vip4", "payment_method": "balance"})

    assert response.status_code == 302
    order = Order.objects.get()
    assert (order.unit_price, order.total_amount) == (Decimal("9.31"), Decimal("18.62"))
    assert order.price_lines == [{"code": "member", "label": "会员价", "amount": "-0.49"}]
    page = client.get(f"/orders/{order.number}/").content.decode()
    assert 'data-testid="price-line-member">每件 -0.49 元</dd>' in page


def test_sku_price_beats_category_rate_beats_level_rate_in_the_api() -> None:
    category = CategoryFactory.create()
    by_sku = SkuFactory.create(price=Decimal("100.00"), product__category=category)
    by_category = SkuFactory.create(price=Decimal("100.00"), product__category=category)
    by_level = SkuFactory.create(price=Decimal("100.00"))
    vip2 = MemberLevel.objects.get(rank=2)
    MemberPrice.objects.create(level=vip2, sku=by_sku, price=Decimal("80.00"))
    MemberPrice.objects.create(level=vip2, category=category, discount_rate=Decimal("0.900"))
    member_prices_changed()
    client, buyer_id = _logged_in(3, "2500.00")  # VIP3 inherits VIP2's rows

    products = client.get("/api/v1/shop/products").json()

    prices = {sku["id"]: (sku["price"], sku["your_price"]) for product in products for sku in product["skus"]}
    assert prices[by_sku.pk] == ("100.00", "80.00")
    assert prices[by_category.pk] == ("100.00", "90.00")
    assert prices[by_level.pk] == ("100.00", "97.00")
    for_sale = skus_for_sale(sku_ids=list(prices))
    assert all(Decimal(prices[sku_id][1]) == sku_price(sku=sku, buyer_id=buyer_id, quantity=1,
                                                       sales_channel=SALES_CHANNEL_API).unit_price
               for sku_id, sku in for_sale.items())
    assert {sku["your_price"] for product in Client().get("/api/v1/shop/products").json()
            for sku in product["skus"]} == {"100.00"}


def test_the_api_checkout_charges_the_member_price() -> None:
    sku = SkuFactory.create(price=Decimal("20.00"))
    stock_sku(sku, 2)
    client, buyer_id = _logged_in(2, "800.00")
    fund_wallet(User.objects.get(pk=buyer_id), "50.00")

    response = client.post("/api/v1/shop/orders", json.dumps({"sku_id": sku.pk, "quantity": 2, "request_id": "m"}),
                           content_type="application/json")

    assert response.status_code == 201, response.content
    assert response.json()["total_amount"] == "39.20"  # 20 × 0.98 × 2


def test_the_membership_page_shows_level_progress_and_benefits() -> None:
    client, _ = _logged_in(2, "1250.00")

    page = client.get("/account/membership/").content.decode()

    assert 'data-testid="membership-level">VIP2</p>' in page
    assert 'data-testid="membership-spend">¥1,250.00</b>' in page
    # Halfway from VIP2 (500) to VIP3 (2000).
    assert 'max="100" value="50"' in page
    assert "再消费 ¥750.00 升级到 VIP3" in page
    assert "95 折（95%）" in page
    assert "VIP5 权益" in page


def test_the_membership_page_needs_a_login() -> None:
    response = Client().get("/account/membership/")

    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_membership_api() -> None:
    client, _ = _logged_in(5, "25000.00")

    body = client.get("/api/v1/shop/membership").json()

    assert (body["level"]["name"], body["spend"], body["next_level"], body["to_next_level"],
            body["progress_percent"]) == ("VIP5", "25000.00", None, "0.00", 100)
    assert [level["name"] for level in body["levels"]] == ["VIP0", "VIP1", "VIP2", "VIP3", "VIP4", "VIP5"]
    assert Client().get("/api/v1/shop/membership").status_code == 401


def test_a_member_price_must_lie_between_floor_and_retail() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"), floor_price=Decimal("8.00"))
    level = MemberLevel.objects.get(rank=1)

    with pytest.raises(ValidationError, match="会员价不能高于零售价"):
        MemberPrice(level=level, sku=sku, price=Decimal("10.01")).full_clean()
    with pytest.raises(ValidationError, match="会员价不能低于该规格的最低售价"):
        MemberPrice(level=level, sku=sku, price=Decimal("7.99")).full_clean()
    with pytest.raises(ValidationError, match="请在「规格」和「分类」中选择且只选择一个"):
        MemberPrice(level=level, price=Decimal("9.00")).full_clean()
    MemberPrice(level=level, sku=sku, price=Decimal("8.00")).full_clean()


def test_level_thresholds_must_rise_with_the_rank() -> None:
    level = MemberLevel.objects.get(rank=3)
    level.threshold = Decimal("500.00")  # VIP2's

    with pytest.raises(ValidationError, match="必须高于 VIP2 的门槛"):
        level.full_clean()
