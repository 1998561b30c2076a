"""Reads about suppliers that routing, staff pages and the order's progress share: whether an offer sells at a
loss (the one loss guard, `price_sells_at_loss`), the direct top-up attempts of an order and those staff must look
at."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.db.models import Case, DecimalField, Exists, F, Min, OuterRef, Q, QuerySet, Value, When

from kameng.catalog.models import DeliveryKind
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.suppliers.models import AttemptStatus, SupplierOffer, SupplierStatus, TopupAttempt


def price_sells_at_loss(*, cost: Decimal, unit_price: Decimal, is_loss_allowed: bool) -> bool:
    """THE loss guard, the one rule every supplier route asks (direct top-up routing, card-key bidding, staff
    lists): an offer sells at a loss when its cost (the offer price) is above the price the order pays per unit
    (`Order.unit_price`, after the member price and every other price rule), unless staff allowed the loss for the
    offer (`is_loss_allowed`). A VIP buyer pays less than the retail price, so an offer that is fine at retail may
    be at a loss for that buyer's order; equal is not a loss."""
    return cost > unit_price and not is_loss_allowed


def offer_is_at_loss(offer: SupplierOffer, *, unit_price: Decimal | None = None) -> bool:
    """`price_sells_at_loss` for an offer, at `unit_price` (an order's), or without an order at the SKU's retail
    price (staff lists, the price sync's warning)."""
    return price_sells_at_loss(cost=offer.price, unit_price=offer.sku.price if unit_price is None else unit_price,
                               is_loss_allowed=offer.is_loss_allowed)


def offers_at_loss(offers: Iterable[SupplierOffer]) -> list[SupplierOffer]:
    return [offer for offer in offers if offer_is_at_loss(offer)]


def offer_at_loss_q(*, unit_price: Decimal | None = None, unit_prices: Mapping[int, Decimal] | None = None) -> Q:
    """`price_sells_at_loss` as a filter on SupplierOffer (the same rule in SQL; a test keeps the two in step):
    at `unit_price`, or at the SKU's retail price without one. `unit_prices`: a price per SKU instead (offers of
    several SKUs in one query, each at what its buyer pays; the retail price for a SKU not named)."""
    selling: Any = F("sku__price") if unit_price is None else Value(unit_price)
    if unit_prices:
        selling = Case(*(When(sku_id=sku_id, then=Value(price)) for sku_id, price in unit_prices.items()),
                       default=F("sku__price"), output_field=DecimalField(max_digits=12, decimal_places=2))
    return Q(price__gt=selling, is_loss_allowed=False)


def offer_not_at_loss_q(*, unit_price: Decimal | None = None, unit_prices: Mapping[int, Decimal] | None = None) -> Q:
    """What routing may use on price: `offers.filter(offer_not_at_loss_q(unit_price=order.unit_price))`."""
    return ~offer_at_loss_q(unit_price=unit_price, unit_prices=unit_prices)


def topup_attempts_of_order(*, order_id: int) -> QuerySet[TopupAttempt]:
    """The order's attempts, first routed first, with their suppliers."""
    return TopupAttempt.objects.filter(order_id=order_id).select_related("supplier").order_by("sequence")


def topup_attempts_needing_review() -> QuerySet[TopupAttempt]:
    """Attempts staff must look at: a late success after a failure, or a result still unknown after the last query."""
    return TopupAttempt.objects.filter(needs_review=True).select_related("supplier", "order").order_by("pk")


def topup_attempt_is_live(*, attempt: TopupAttempt) -> bool:
    return attempt.status not in (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED)


def sku_supply_costs(sku_ids: Iterable[int]) -> dict[int, Decimal]:
    """The cheapest price of an active offer of an approved supplier for each SKU that has one (the platform's
    supply cost; reached by resellers through settings.KAMENG_SKU_SUPPLY_COST). SKUs without an offer are absent."""
    rows = (SupplierOffer.objects.filter(sku_id__in=list(sku_ids), is_active=True,
                                         supplier__status=SupplierStatus.APPROVED)
            .values("sku_id").annotate(cheapest=Min("price")).values_list("sku_id", "cheapest"))
    return dict(rows)
# Orders that never reach a supplier's hands: not paid (yet), or held for risk review before fulfilment.
_NOT_ROUTABLE_YET = (OrderStatus.PENDING_PAYMENT, OrderStatus.EXPIRED, OrderStatus.CANCELLED, OrderStatus.UNDER_REVIEW)


def topup_orders_without_attempts() -> QuerySet[Order]:
    """Paid direct top-up orders that no supplier was ever asked to fill (no attempt at all): no offer was eligible
    when they were routed (refunded at once), or they wait for their fulfilment. Newest first. The attempts list
    cannot show them, so staff get them here (with `no_route_reasons`)."""
    return (Order.objects.filter(sku__product__delivery_kind=DeliveryKind.DIRECT_TOPUP)
            .exclude(status__in=_NOT_ROUTABLE_YET)
            .exclude(Exists(TopupAttempt.objects.filter(order_id=OuterRef("pk"))))
            .select_related("sku__product").order_by("-pk"))


def no_route_reasons(*, order_ids: Iterable[int]) -> dict[int, str]:
    """Why each order had no supplier, as its staff timeline says (the newest TOPUP_NO_ROUTE detail, else the
    buyer's DELIVERY_FAILED reason); orders without either are left out."""
    reasons: dict[int, str] = {}
    rows = (OrderEvent.objects.filter(order_id__in=list(order_ids),
                                      kind__in=[OrderEventKind.TOPUP_NO_ROUTE, OrderEventKind.DELIVERY_FAILED])
            .order_by("kind", "pk").values_list("order_id", "kind", "params"))
    for order_id, kind, params in rows:  # delivery_failed rows first, so a no-route detail wins
        text = str((params or {}).get("detail" if kind == OrderEventKind.TOPUP_NO_ROUTE else "reason") or "")
        if text:
            reasons[order_id] = text
    return reasons
