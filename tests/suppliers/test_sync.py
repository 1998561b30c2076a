"""Price and stock sync by pull: offers follow the upstream, orders already placed keep their prices, an offer
turned loss-making is flagged, and an upstream that is down changes nothing but the supplier's sync record."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from django.core.cache import cache
from django.test import Client

from kameng.inventory.models import CardKey
from kameng.orders.models import Order
from kameng.orders.services import order_checkout
from kameng.suppliers.connectors import http as http_module
from kameng.suppliers.models import ConnectorKind, OfferStockSource, Supplier, SupplierOffer, TopupAttempt
from kameng.suppliers.selectors import offer_is_at_loss, offer_not_at_loss_q
from kameng.suppliers.sync import supplier_sync_pull, suppliers_to_sync, upstream_view
from kameng.suppliers.tasks import sync_all_suppliers
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db

YILE = {"preset": "yile", "base_url": "https://sup.example.com/api/", "app_id": "A1", "app_secret": "S1"}


def yile_supplier() -> Supplier:
    return SupplierFactory.create(connector_kind=ConnectorKind.HTTP, connector_config=json.dumps(YILE))


def upstream_goods(monkeypatch: pytest.MonkeyPatch, goods: list[dict[str, object]]) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": 0, "message": "ok", "data": goods})

    monkeypatch.setattr(http_module, "http_transport", httpx.MockTransport(upstream))
    return seen


def upstream_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    monkeypatch.setattr(http_module, "http_transport", httpx.MockTransport(upstream))


def test_pull_updates_price_stock_and_synced_at_of_matching_offers(monkeypatch: pytest.MonkeyPatch) -> None:
    supplier = yile_supplier()
    offer = SupplierOfferFactory.create(supplier=supplier, upstream_product_id="11", price=Decimal("9.00"))
    other = SupplierOfferFactory.create(supplier=supplier, upstream_product_id="99", price=Decimal("8.00"),
                                        upstream_stock=7)
    foreign = SupplierOfferFactory.create(upstream_product_id="11", price=Decimal("9.00"))  # another supplier's
    upstream_goods(monkeypatch, [{"id": 11, "name": "60 点券", "price": "8.80", "stock": 42},
                                 {"id": 12, "name": "未上架", "price": "1.00", "stock": 3}])

    result = supplier_sync_pull(supplier_id=supplier.pk)

    assert result is not None
    assert (result.updated, result.unchanged, result.unknown_products) == (1, 0, ["12"])
    offer.refresh_from_db()
    other.refresh_from_db()
    foreign.refresh_from_db()
    assert (offer.price, offer.upstream_stock) == (Decimal("8.80"), 42)
    assert offer.synced_at is not None
    assert (other.price, other.upstream_stock, other.synced_at) == (Decimal("8.00"), 7, None)
    assert (foreign.price, foreign.upstream_stock, foreign.synced_at) == (Decimal("9.00"), None, None)
    supplier.refresh_from_db()
    assert supplier.last_sync_error == ""
    assert supplier.last_sync_at is not None
    assert upstream_view(supplier_id=supplier.pk)["goods"]["11"] == {"price": "8.80", "stock": 42,
                                                                     "name": "60 点券"}


def test_a_price_change_leaves_orders_already_placed_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    supplier = yile_supplier()
    sku = SkuFactory.create(price=Decimal("9.50"))
    offer = SupplierOfferFactory.create(supplier=supplier, sku=sku, upstream_product_id="11", price=Decimal("9.00"))
    stock_sku(sku, 1)
    CardKey.objects.filter(sku=sku).update(supplier=supplier, cost=Decimal("9.00"))
    buyer = UserFactory.create()
    fund_wallet(buyer, "9.50")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order
    attempt = TopupAttempt.objects.create(order=order, offer=offer, supplier=supplier, sequence=1,
                                          customer_order_no="T-SYNC-1", cost=offer.price)
    upstream_goods(monkeypatch, [{"id": 11, "name": "60 点券", "price": "9.40", "stock": 5}])

    supplier_sync_pull(supplier_id=supplier.pk)

    offer.refresh_from_db()
    assert offer.price == Decimal("9.40")
    attempt.refresh_from_db()
    assert attempt.cost == Decimal("9.00")
    assert CardKey.objects.get(sku=sku).cost == Decimal("9.00")
    assert Order.objects.get(pk=order.pk).total_amount == Decimal("9.50")


def test_an_offer_whose_cost_rises_above_the_selling_price_is_not_routed(monkeypatch: pytest.MonkeyPatch,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    supplier = yile_supplier()
    sku = SkuFactory.create(price=Decimal("9.50"))
    offer = SupplierOfferFactory.create(supplier=supplier, sku=sku, upstream_product_id="11", price=Decimal("9.00"))
    allowed = SupplierOfferFactory.create(supplier=supplier, upstream_product_id="12", price=Decimal("9.00"),
                                          is_loss_allowed=True)
    upstream_goods(monkeypatch, [{"id": 11, "price": "9.51", "stock": 5}, {"id": 12, "price": "9.60", "stock": 5}])

    result = supplier_sync_pull(supplier_id=supplier.pk)

    assert result is not None
    assert result.now_at_loss == [offer.pk]
    offer.refresh_from_db()
    allowed.refresh_from_db()
    assert offer_is_at_loss(offer) is True
    assert offer_is_at_loss(allowed) is False
    assert list(SupplierOffer.objects.filter(offer_not_at_loss_q()).values_list("pk", flat=True)) == [allowed.pk]
    assert f"offer {offer.pk} now costs 9.51" in caplog.text


def test_a_supplier_that_is_down_keeps_its_last_values_and_records_the_error(
        monkeypatch: pytest.MonkeyPatch, client: Client) -> None:
    supplier = yile_supplier()
    offer = SupplierOfferFactory.create(supplier=supplier, upstream_product_id="11", price=Decimal("9.00"),
                                        upstream_stock=30)
    upstream_goods(monkeypatch, [{"id": 11, "price": "8.50", "stock": 20}])
    supplier_sync_pull(supplier_id=supplier.pk)
    offer.refresh_from_db()
    synced_at = offer.synced_at
    upstream_down(monkeypatch)

    result = supplier_sync_pull(supplier_id=supplier.pk)

    assert result is None
    offer.refresh_from_db()
    assert (offer.price, offer.upstream_stock, offer.synced_at) == (Decimal("8.50"), 20, synced_at)
    supplier.refresh_from_db()
    assert supplier.last_sync_error == "UpstreamUnavailableError: goods list unavailable (ConnectTimeout)"
    assert upstream_view(supplier_id=supplier.pk)["goods"]["11"]["price"] == "8.50"
    assert client.get("/").status_code == 200
    assert client.get(f"/products/{offer.sku.product_id}/").status_code == 200


def test_the_periodic_sync_covers_every_approved_connector_supplier(monkeypatch: pytest.MonkeyPatch) -> None:
    synced = yile_supplier()
    SupplierFactory.create()  # manual stock: nothing to pull
    SupplierFactory.create(connector_kind=ConnectorKind.HTTP, connector_config=json.dumps(YILE),
                           status="suspended")
    offer = SupplierOfferFactory.create(supplier=synced, upstream_product_id="11", price=Decimal("9.00"))
    seen = upstream_goods(monkeypatch, [{"id": 11, "price": "7.77", "stock": 1}])

    assert suppliers_to_sync() == [synced.pk]
    assert sync_all_suppliers.delay().get() == 1

    assert len(seen) == 1
    offer.refresh_from_db()
    assert offer.price == Decimal("7.77")


def test_a_card_key_offer_is_matched_only_by_its_upstream_code(monkeypatch: pytest.MonkeyPatch) -> None:
    supplier = yile_supplier()
    offer = SupplierOfferFactory.create(supplier=supplier, upstream_product_id="", price=Decimal("9.00"),
                                        stock_source=OfferStockSource.CARD_KEYS)
    upstream_goods(monkeypatch, [{"id": "", "price": "1.00"}, {"id": 11, "price": "2.00"}])

    supplier_sync_pull(supplier_id=supplier.pk)

    offer.refresh_from_db()
    assert (offer.price, offer.synced_at) == (Decimal("9.00"), None)


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    cache.clear()


def test_goods_the_upstream_marks_unavailable_have_no_stock(monkeypatch: pytest.MonkeyPatch) -> None:
    from kameng.suppliers.connectors.base import UpstreamGoods
    from kameng.suppliers.sync import supplier_offers_apply

    offer = SupplierOfferFactory.create(upstream_product_id="F1", upstream_stock=None)

    supplier_offers_apply(supplier_id=offer.supplier_id,
                          goods=[UpstreamGoods(product_id="F1", name="", price=Decimal("9.00"), is_available=False)])

    offer.refresh_from_db()
    assert offer.upstream_stock == 0
