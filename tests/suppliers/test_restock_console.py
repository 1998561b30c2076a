"""The supplier console's restock page: a supplier sees and handles only its own requests."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from kameng.suppliers import notify_settings
from kameng.suppliers.models import RestockRequest, RestockStatus, Supplier
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


def resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    monkeypatch.setattr(notify_settings, "host_addresses", lambda host: list(addresses))


def test_the_supplier_sets_a_webhook_and_sees_its_secret_once(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = request_for("我的点卡")
    client.force_login(mine.supplier.owner)
    resolving_to(monkeypatch, "93.184.215.14")

    response = client.post("/supplier/restock/settings/", {"webhook_url": "https://hooks.supplier.example/restock",
                                                           "notify_email": "stock@supplier.example"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    config = json.loads(str(Supplier.objects.get(pk=mine.supplier_id).connector_config))
    assert config["webhook_url"] == "https://hooks.supplier.example/restock"
    assert config["notify_email"] == "stock@supplier.example"
    assert config["webhook_secret"] in response.content.decode()
    again = client.get("/supplier/restock/").content.decode()
    assert config["webhook_secret"] not in again
    assert "签名密钥：已设置" in again


@pytest.mark.parametrize(("url", "addresses", "message"), [
    ("http://hooks.supplier.example/", ["93.184.215.14"], "https://"),
    ("https://localhost/", ["127.0.0.1"], "公网"),
    ("https://intranet.example/", ["10.0.0.8", "93.184.215.14"], "公网"),
    ("https://metadata.example/", ["169.254.169.254"], "公网"),
])
def test_a_webhook_into_a_private_network_is_refused(client: Client, monkeypatch: pytest.MonkeyPatch, url: str,
                                                     addresses: list[str], message: str) -> None:
    mine = request_for("我的点卡")
    client.force_login(mine.supplier.owner)
    resolving_to(monkeypatch, *addresses)

    response = client.post("/supplier/restock/settings/", {"webhook_url": url, "notify_email": ""})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert Supplier.objects.get(pk=mine.supplier_id).connector_config is None


def test_the_settings_keep_what_staff_configured(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = request_for("我的点卡")
    Supplier.objects.filter(pk=mine.supplier_id).update(connector_config=json.dumps({"push_secret": "p"}))
    client.force_login(mine.supplier.owner)

    client.post("/supplier/restock/settings/", {"webhook_url": "", "notify_email": "a@supplier.example"})

    config = json.loads(str(Supplier.objects.get(pk=mine.supplier_id).connector_config))
    assert config == {"push_secret": "p", "notify_email": "a@supplier.example"}
