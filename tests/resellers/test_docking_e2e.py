"""Site-to-site docking end to end: the "kameng" supplier connector (downstream) against OUR OWN served Open API v1
(upstream), both sides in one database. The upstream is a reseller with an API key; the downstream a Supplier of
connector kind "kameng" holding that key, pointed at the live server. Products are synced, a direct top-up goes
down, up, to the upstream's own supplier and back (answer and signed callback), and a card-key order brings its
keys back."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from kameng.orders.models import OrderStatus
from kameng.resellers.models import NotifyDelivery, NotifyState, OpenApiOrder
from kameng.suppliers.connectors.base import Outcome, TopupKind, TopupRequest
from kameng.suppliers.connectors.registry import connector_for
from kameng.suppliers.models import AttemptStatus, ConnectorKind, SupplierOffer, TopupAttempt
from kameng.suppliers.sync import supplier_sync_pull
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory, stock_sku
from tests.resellers.openapi_support import reseller_with_key
from tests.suppliers.topup_support import SUCCEEDED, Upstreams, topup_order_paid, topup_sku, upstreams  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def docked(live_server: Any, settings: Any, upstreams: Upstreams) -> dict[str, Any]:  # noqa: F811
    settings.SITE_URL = live_server.url  # the downstream's callback URL points at the live server
    settings.KAMENG_NOTIFY_ALLOW_PRIVATE = True  # the callback target is the loopback here
    holder = reseller_with_key(funds="1000.00")
    up_topup = topup_sku(price="48.00")
    up_offer, up_supplier = upstreams.offer("upstream-supplier", up_topup, "45.00")
    up_supplier.default_step = SUCCEEDED  # the upstream's own supplier tops up at once
    up_card = SkuFactory.create(price=Decimal("9.00"), product__name="点卡", name="10 元")
    stock_sku(up_card, 5)
    supplier = SupplierFactory.create(name="kameng upstream", connector_kind=ConnectorKind.KAMENG,
                                      connector_config=json.dumps({
                                          "base_url": live_server.url + "/openapi/v1", "key_id": holder.key.key_id,
                                          "secret": holder.secret, "timeout": 20}))
    down_topup = topup_sku(price="50.00")
    offer = SupplierOfferFactory.create(supplier=supplier, sku=down_topup, price=Decimal("49.00"),
                                        upstream_product_id=str(up_topup.pk))
    return {"holder": holder, "up_topup": up_topup, "up_card": up_card, "up_offer": up_offer,
            "supplier": supplier, "offer": offer, "down_topup": down_topup}


def test_products_sync_at_the_resellers_price(docked: dict[str, Any]) -> None:
    result = supplier_sync_pull(supplier_id=docked["supplier"].pk)

    assert result is not None
    assert result.updated == 1
    offer = SupplierOffer.objects.get(pk=docked["offer"].pk)
    assert offer.price == Decimal("48.00")
    goods = {item.product_id: item for item in connector_for(docked["supplier"]).goods_list()}
    assert goods[str(docked["up_card"].pk)].stock == 5
    assert goods[str(docked["up_topup"].pk)].is_available


def test_direct_topup_flows_through_and_the_callback_is_accepted(docked: dict[str, Any]) -> None:
    order = topup_order_paid(docked["down_topup"])  # paid, fulfilled at commit (eager tasks): submitted upstream

    order.refresh_from_db()
    attempt = TopupAttempt.objects.get(order=order)
    assert (order.status, attempt.status) == (OrderStatus.DELIVERED, AttemptStatus.SUCCEEDED)
    upstream = OpenApiOrder.objects.select_related("order").get(request_no=attempt.customer_order_no)
    assert upstream.reseller_id == docked["holder"].reseller.pk
    assert upstream.order.status == OrderStatus.DELIVERED
    assert attempt.supplier_order_id == upstream.order.number
    assert upstream.notify_url.endswith(f"/suppliers/callback/{docked['supplier'].pk}/")
    delivery = NotifyDelivery.objects.get(openapi_order=upstream)
    assert delivery.state == NotifyState.DELIVERED  # the downstream accepted the signed callback
    assert delivery.attempt_log.get().status_code == 200


def test_card_key_order_brings_its_keys_back(docked: dict[str, Any]) -> None:
    connector = connector_for(docked["supplier"])
    request = TopupRequest(customer_order_no="CARD-0001", kind=TopupKind.CARD,
                           upstream_product_id=str(docked["up_card"].pk), quantity=2)

    answer = connector.topup_submit(request)

    assert answer.outcome == Outcome.SUCCEEDED
    assert len(answer.cards) == 2
    assert len(set(answer.cards)) == 2
    again = connector.topup_submit(request)  # the same request_no: the same order, not bought twice
    assert again.cards == answer.cards
    assert connector.topup_query("CARD-0001").cards == answer.cards
    assert connector.topup_query("CARD-0002").outcome == Outcome.NOT_FOUND
    assert OpenApiOrder.objects.filter(request_no="CARD-0001").count() == 1
