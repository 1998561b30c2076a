"""The supplier console's restock page: a supplier sees and handles only its own requests."""

from __future__ import annotations

import pytest
from django.test import Client

from kameng.suppliers.models import RestockRequest, RestockStatus
from tests.factories import SkuFactory, SupplierOfferFactory, UserFactory

pytestmark = pytest.mark.django_db


def request_for(product_name: str) -> RestockRequest:
    offer = SupplierOfferFactory.create(sku=SkuFactory.create(product__name=product_name), upstream_stock=1)
    return RestockRequest.objects.create(offer=offer, supplier=offer.supplier, stock_at_raise=1, threshold=10)


def test_the_page_lists_only_the_suppliers_own_requests(client: Client) -> None:
    mine = request_for("我的点卡")
    request_for("别家点卡")
    client.force_login(mine.supplier.owner)

    response = client.get("/supplier/restock/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "我的点卡" in body
    assert "别家点卡" not in body
    assert body.count('data-testid="restock-row"') == 1
    assert 'href="/supplier/restock/"' in body  # in the console's navigation


def test_the_supplier_acknowledges_then_marks_restocked(client: Client) -> None:
    mine = request_for("我的点卡")
    client.force_login(mine.supplier.owner)

    assert client.post(f"/supplier/restock/{mine.pk}/acknowledged/").status_code == 302
    mine.refresh_from_db()
    assert (mine.status, mine.acknowledged_at is not None) == (RestockStatus.ACKNOWLEDGED, True)

    assert client.post(f"/supplier/restock/{mine.pk}/restocked/").status_code == 302
    mine.refresh_from_db()
    assert (mine.status, mine.restocked_at is not None) == (RestockStatus.RESTOCKED, True)

    response = client.post(f"/supplier/restock/{mine.pk}/acknowledged/", follow=True)
    assert "不能再这样处理" in response.content.decode()
    mine.refresh_from_db()
    assert mine.status == RestockStatus.RESTOCKED


def test_another_suppliers_request_is_404_and_unchanged(client: Client) -> None:
    mine = request_for("我的点卡")
    theirs = request_for("别家点卡")
    client.force_login(mine.supplier.owner)

    assert client.post(f"/supplier/restock/{theirs.pk}/acknowledged/").status_code == 404
    assert client.post(f"/supplier/restock/{theirs.pk}/restocked/").status_code == 404
    assert client.post(f"/supplier/restock/{mine.pk}/deleted/").status_code == 404

    theirs.refresh_from_db()
    assert (theirs.status, theirs.acknowledged_at, theirs.restocked_at) == (RestockStatus.OPEN, None, None)


def test_a_buyer_gets_404(client: Client) -> None:
    client.force_login(UserFactory.create())

    assert client.get("/supplier/restock/").status_code == 404


def test_the_page_reads_english(client: Client) -> None:
    mine = request_for("我的点卡")
    client.force_login(mine.supplier.owner)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})

    body = client.get("/supplier/restock/").content.decode()

    assert "Restock requests" in body
    assert "Open" in body
