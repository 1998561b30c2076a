from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from kameng.suppliers.models import RatingSnapshot, Supplier
from tests.factories import SupplierFactory, UserFactory

pytestmark = pytest.mark.django_db


def _snapshot(supplier: Supplier, days_ago: int, stars: str, reasons: str, **kwargs: object) -> RatingSnapshot:
    return RatingSnapshot.objects.create(
        supplier=supplier, day=timezone.localdate() - timedelta(days=days_ago), stars=Decimal(stars), reasons=reasons,
        components={"success": "0.6000", "delivery": "1.0000", "after_sales": "1.0000", "price": "0.5000",
                    "stock": "1.0000"}, orders_count=40, **kwargs)


def test_the_rating_page_shows_stars_components_reasons_and_history(client: Client) -> None:
    supplier = SupplierFactory.create(rating=Decimal("4.28"))
    _snapshot(supplier, 1, "4.10", "成功率 90%（低于 95%）")
    _snapshot(supplier, 0, "4.28", "成功率 92%（低于 95%）\n平均到账 45 秒（中位数）")
    other = SupplierFactory.create(rating=Decimal("1.50"))
    _snapshot(other, 0, "1.50", "成功率 50%（低于 95%）")
    client.force_login(supplier.owner)

    response = client.get("/supplier/rating/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "当前星级：4.28 星" in page
    assert "成功率 92%（低于 95%）" in page
    assert "平均到账 45 秒（中位数）" in page
    assert "60/100" in page  # the success component
    assert "35%" in page  # its weight
    assert page.count("<tr><td>20") == 2  # two days of history
    assert "成功率 50%" not in page
    assert "1.50" not in page
    assert 'href="/supplier/rating/" aria-current="page"' in page


def test_a_supplier_without_a_rating_yet_is_told_when_it_comes(client: Client) -> None:
    supplier = SupplierFactory.create()
    client.force_login(supplier.owner)

    page = client.get("/supplier/rating/").content.decode()

    assert "尚未计算星级" in page
    assert "当前星级：3.00 星" in page


def test_a_provisional_rating_says_there_is_too_little_data(client: Client) -> None:
    supplier = SupplierFactory.create()
    _snapshot(supplier, 0, "3.00", "近 30 天订单 3 笔，不足 20 笔：数据不足，暂按 3.00 星", is_provisional=True)
    client.force_login(supplier.owner)

    page = client.get("/supplier/rating/").content.decode()

    assert "数据不足：暂按 3.00 星" in page
    assert "近 30 天订单 3 笔，不足 20 笔" in page


def test_a_buyer_gets_404_from_the_rating_page(client: Client) -> None:
    client.force_login(UserFactory.create())

    assert client.get("/supplier/rating/").status_code == 404
