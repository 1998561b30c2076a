"""A card-key SKU only an upstream stocks can be bought (kameng.orders.upstream), so the product lists must not say 0
of it: the Open API v1 (GET /products), the storefront JSON and the acg-faka items report the platform's keys plus
what the upstream offers routing would use can sell — at the caller's price, under their daily cap, never an
excluded, inactive, uploaded-key or loss-making offer (kameng.suppliers.routing.upstream_stock_by_sku) — and a
downstream kameng site docked onto our Open API (the "kameng" connector) syncs that stock and routes to it."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.test import Client

from kameng.catalog.models import DeliveryKind, Sku
from kameng.orders.models import Order
from kameng.orders.services import order_checkout
from kameng.orders.upstream import card_key_upstream_takes
from kameng.resellers.pricing import reseller_tables_changed
from kameng.suppliers.connectors import kameng as kameng_connector
from kameng.suppliers.models import (
    ConnectorKind,
    OfferStockSource,
    RoutingRuleKind,
    SkuRoutingRule,
    Supplier,
    SupplierOffer,
    SupplierStatus,
    TopupAttempt,
)
from kameng.suppliers.routing import UNKNOWN_UPSTREAM_STOCK
from kameng.suppliers.sync import supplier_sync_pull
from kameng.suppliers.upstream_cards import skus_sold_upstream
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory, UserFactory, fund_wallet, stock_sku
from tests.resellers.openapi_support import KeyHolder, call, reseller_with_key
from tests.resellers.support import tier_make
from tests.suppliers.topup_support import Upstreams, upstreams

__all__ = ["upstreams"]

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


def card_sku(price: str = "20.00") -> Sku:
    return SkuFactory.create(product__delivery_kind=DeliveryKind.CARD_KEY, price=Decimal(price))


def reseller_at_twenty_percent_off() -> KeyHolder:
    """A reseller whose tier pays 80 % of retail through the Open API (¥16.00 for a ¥20.00 SKU)."""
    holder = reseller_with_key()
    holder.reseller.tier = tier_make(discount="20.00")
    holder.reseller.save(update_fields=["tier"])
    reseller_tables_changed()
    return holder


def listed_stock(client: Client, holder: KeyHolder, sku: Sku) -> int:
    one = call(client, holder, "GET", f"/products/{sku.pk}")
    assert one.status_code == 200, one.content
    [row] = [row for row in call(client, holder, "GET", "/products").json() if row["sku_id"] == sku.pk]
    assert row == one.json()
    return int(row["stock"])


def test_an_upstream_only_sku_reports_the_offers_stock(client: Client, upstreams: Upstreams) -> None:
    holder = reseller_at_twenty_percent_off()
    sku = card_sku("20.00")
    upstreams.offer("甲", sku, "15.00", upstream_stock=7)

    response = call(client, holder, "GET", f"/products/{sku.pk}")

    assert response.json() == {"sku_id": sku.pk, "product_name": sku.product.name, "sku_name": sku.name,
                               "price": "16.00", "stock": 7, "delivery_kind": "card_key"}
    assert listed_stock(client, holder, sku) == 7


def test_platform_keys_and_every_eligible_offer_add_up(client: Client, upstreams: Upstreams) -> None:
    holder = reseller_with_key()
    sku = card_sku("20.00")
    stock_sku(sku, 3)
    upstreams.offer("甲", sku, "18.00", upstream_stock=7)
    upstreams.offer("乙", sku, "17.00", upstream_stock=5)
    plain = card_sku("20.00")  # no offer: its keys only
    stock_sku(plain, 2)

    assert listed_stock(client, holder, sku) == 15
    assert listed_stock(client, holder, plain) == 2


def test_an_upstream_that_does_not_say_its_stock_counts_as_plenty(client: Client, upstreams: Upstreams) -> None:
    holder = reseller_with_key()
    sku = card_sku("20.00")
    stock_sku(sku, 2)
    upstreams.offer("甲", sku, "18.00", upstream_stock=None)

    assert listed_stock(client, holder, sku) == 2 + UNKNOWN_UPSTREAM_STOCK


WHY_NOT = ["excluded", "at_a_loss", "at_a_loss_for_this_reseller", "inactive", "uploaded_keys", "not_approved",
           "out_of_stock", "no_place_left_today", "manual_supplier"]


@pytest.mark.parametrize("why", WHY_NOT)
def test_an_offer_routing_would_not_use_is_not_counted(why: str, client: Client, upstreams: Upstreams) -> None:
    holder = reseller_at_twenty_percent_off()
    sku = card_sku("20.00")
    stock_sku(sku, 2)
    changes: dict[str, dict[str, Any]] = {
        "inactive": {"is_active": False}, "uploaded_keys": {"stock_source": OfferStockSource.CARD_KEYS},
        "out_of_stock": {"upstream_stock": 0}, "no_place_left_today": {"max_per_day": 0}}
    fields: dict[str, Any] = {"upstream_stock": 7, **changes.get(why, {})}
    cost = {"at_a_loss": "21.00", "at_a_loss_for_this_reseller": "17.00"}.get(why, "15.00")
    offer, _ = upstreams.offer("甲", sku, cost, **fields)
    if why == "excluded":
        SkuRoutingRule.objects.create(sku=sku, supplier=offer.supplier, kind=RoutingRuleKind.EXCLUDE)
    if why == "not_approved":
        Supplier.objects.filter(pk=offer.supplier_id).update(status=SupplierStatus.SUSPENDED)
    if why == "manual_supplier":
        Supplier.objects.filter(pk=offer.supplier_id).update(connector_kind=ConnectorKind.MANUAL)

    assert listed_stock(client, holder, sku) == 2
    # The storefront, at the retail price, counts the offer dear for this reseller only (¥17.00 < ¥20.00).
    assert (sku.pk in skus_sold_upstream([sku.pk])) is (why == "at_a_loss_for_this_reseller")


def test_an_offer_whose_daily_cap_is_used_up_stops_counting(client: Client, upstreams: Upstreams,
                                                           django_capture_on_commit_callbacks: Capture) -> None:
    holder = reseller_with_key()
    sku = card_sku("20.00")
    upstreams.offer("甲", sku, "18.00", upstream_stock=7, max_per_day=1)  # answers "processing": not failed
    assert listed_stock(client, holder, sku) == 7
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")

    with django_capture_on_commit_callbacks(execute=True):
        order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1)

    assert TopupAttempt.objects.filter(order=Order.objects.get(), offer__sku=sku).count() == 1
    assert listed_stock(client, holder, sku) == 0


def test_the_storefront_json_reports_the_upstream_stock_too(client: Client, upstreams: Upstreams) -> None:
    sku = card_sku("20.00")
    stock_sku(sku, 1)
    upstreams.offer("甲", sku, "18.00", upstream_stock=4)
    dear = card_sku("20.00")
    upstreams.offer("乙", dear, "21.00", upstream_stock=4)  # at a loss at retail

    listed = {row["id"]: row["stock"] for product in client.get("/api/v1/shop/products").json()
              for row in product["skus"]}

    assert (listed[sku.pk], listed[dear.pk]) == (5, 0)


# --- a downstream kameng site docked onto our Open API --------------------------------------------------------------


def served_by_us(client: Client) -> httpx.MockTransport:
    """The downstream connector's HTTP calls, answered by this site's own Open API through the test client."""

    def handle(request: httpx.Request) -> httpx.Response:
        meta: dict[str, Any] = {f"HTTP_{name.upper().replace('-', '_')}": value
                                for name, value in request.headers.items() if name.lower().startswith("x-kameng-")}
        answer = client.generic(request.method, request.url.raw_path.decode(), data=request.content,
                                content_type=request.headers.get("content-type", "application/json"), **meta)
        return httpx.Response(answer.status_code, content=answer.content,
                              headers={"content-type": answer["Content-Type"]})

    return httpx.MockTransport(handle)


def test_a_downstream_kameng_site_syncs_the_stock_and_routes_to_it(client: Client, upstreams: Upstreams,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    holder = reseller_with_key(funds="500.00")
    upstream_sku = card_sku("20.00")
    upstreams.offer("福禄", upstream_sku, "15.00", upstream_stock=7)  # no key here: only the upstream stocks it
    monkeypatch.setattr(kameng_connector, "transport", served_by_us(client))
    docking = SupplierFactory.create(name="上游 kameng", connector_kind=ConnectorKind.KAMENG,
                                     connector_config=json.dumps({"base_url": "https://up.example.com/openapi/v1",
                                                                  "key_id": holder.key.key_id,
                                                                  "secret": holder.secret}))
    downstream_sku = card_sku("25.00")
    offer = SupplierOfferFactory.create(supplier=docking, sku=downstream_sku, price=Decimal("24.00"),
                                        upstream_product_id=str(upstream_sku.pk), upstream_stock=0)
    assert downstream_sku.pk not in skus_sold_upstream([downstream_sku.pk])

    result = supplier_sync_pull(supplier_id=docking.pk)

    assert result is not None
    assert result.updated == 1
    offer.refresh_from_db()
    assert (offer.price, offer.upstream_stock) == (Decimal("20.00"), 7)
    assert downstream_sku.pk in skus_sold_upstream([downstream_sku.pk])
    order = Order(sku_id=downstream_sku.pk, quantity=7, unit_price=Decimal("25.00"))
    assert card_key_upstream_takes(order)  # a card-key order the stock cannot fill may wait for this upstream
    assert not card_key_upstream_takes(Order(sku_id=downstream_sku.pk, quantity=8, unit_price=Decimal("25.00")))
    assert SupplierOffer.objects.filter(sku=upstream_sku, upstream_stock=7).count() == 1  # untouched upstream
