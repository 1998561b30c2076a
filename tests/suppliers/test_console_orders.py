from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from kameng.catalog.models import DeliveryKind
from kameng.inventory.batches import card_key_import_submit
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from kameng.suppliers.models import AttemptStatus, OfferStockSource, SupplierOffer, TopupAttempt
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory, UserFactory, fund_wallet

pytestmark = pytest.mark.django_db


def _sold_order(offer: SupplierOffer, secrets: list[str], *, buyer_name: str = "secretbuyer") -> Order:
    card_key_import_submit(sku_id=offer.sku_id, created_by_id=None, text="\n".join(secrets),
                           supplier_id=offer.supplier_id, cost=offer.price)
    buyer = UserFactory.create(username=buyer_name)
    fund_wallet(buyer, "100.00")
    return order_checkout(buyer_id=buyer.pk, sku_id=offer.sku_id, quantity=len(secrets)).order


def _card_key_offer() -> SupplierOffer:
    sku = SkuFactory.create(product__delivery_kind=DeliveryKind.CARD_KEY, price=Decimal("10.00"))
    return SupplierOfferFactory.create(supplier=SupplierFactory.create(), sku=sku, price=Decimal("8.40"),
                                       stock_source=OfferStockSource.CARD_KEYS)


def _attempt(offer: SupplierOffer, *, status: str, seconds: int, number: str) -> TopupAttempt:
    buyer = UserFactory.create(username=f"topupbuyer{number}")
    order = Order.objects.create(number=number, buyer=buyer, sku=offer.sku, title="话费", quantity=1,
                                 unit_price=Decimal("50.00"), total_amount=Decimal("50.00"),
                                 status=OrderStatus.DELIVERED)
    submitted = timezone.now() - timedelta(minutes=1)
    return TopupAttempt.objects.create(order=order, offer=offer, supplier=offer.supplier, sequence=1,
                                       customer_order_no=f"T{number}", cost=Decimal("49.10"), status=status,
                                       submitted_at=submitted, finished_at=submitted + timedelta(seconds=seconds))


def test_the_orders_page_lists_what_the_supplier_delivered_without_buyer_or_secrets(client: Client) -> None:
    offer = _card_key_offer()
    order = _sold_order(offer, ["SEC-AAAA-0001", "SEC-AAAA-0002"])
    topup = _attempt(SupplierOfferFactory.create(supplier=offer.supplier), status=AttemptStatus.SUCCEEDED,
                     seconds=17, number="K20260001")
    other = _sold_order(_card_key_offer(), ["OTHER-0001"], buyer_name="otherbuyer")
    client.force_login(offer.supplier.owner)

    body = client.get("/supplier/orders/").content.decode()

    assert order.status == OrderStatus.DELIVERED
    assert body.count('data-testid="delivered-row"') == 2
    assert order.number in body
    assert "¥16.80" in body  # 2 keys at 8.40
    assert topup.order.number in body
    assert "¥49.10" in body
    assert "17 秒" in body
    assert other.number not in body
    for hidden in ("SEC-AAAA-0001", "SEC-AAAA-0002", "secretbuyer", "topupbuyerK20260001"):
        assert hidden not in body


def test_the_disputes_page_lists_its_orders_in_after_sales(client: Client) -> None:
    offer = _card_key_offer()
    disputed = _sold_order(offer, ["D-0001"])
    quiet = _sold_order(offer, ["D-0002"], buyer_name="quietbuyer")
    Order.objects.filter(pk=disputed.pk).update(status=OrderStatus.AFTER_SALES)
    client.force_login(offer.supplier.owner)

    body = client.get("/supplier/disputes/").content.decode()

    assert body.count('data-testid="delivered-row"') == 1
    assert disputed.number in body
    assert quiet.number not in body
    assert "售后中" in body
