"""Reads about suppliers that routing, staff pages and the order's progress share: whether an offer sells at a
loss, the direct top-up attempts of an order and those staff must look at."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db.models import F, Min, Q, QuerySet

from kameng.suppliers.models import AttemptStatus, SupplierOffer, SupplierStatus, TopupAttempt


def offer_is_at_loss(offer: SupplierOffer) -> bool:
    """The offer's cost is above its SKU's selling price and staff have not allowed that (`is_loss_allowed`):
    routing skips it (never sell at a loss without staff saying so). The selling price is the SKU's retail price;
    a member discount below cost is the pricing rules' business (the SKU's floor price)."""
    return offer.price > offer.sku.price and not offer.is_loss_allowed


def offers_at_loss(offers: Iterable[SupplierOffer]) -> list[SupplierOffer]:
    return [offer for offer in offers if offer_is_at_loss(offer)]


def offer_not_at_loss_q() -> Q:
    """A filter on SupplierOffer keeping what routing may use on price: `offers.filter(offer_not_at_loss_q())`."""
    return Q(price__lte=F("sku__price")) | Q(is_loss_allowed=True)


def offer_at_loss_q() -> Q:
    return Q(price__gt=F("sku__price"), is_loss_allowed=False)


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
