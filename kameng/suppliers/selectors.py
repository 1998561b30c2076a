"""Reads about suppliers' offers that routing and the pages share: whether an offer sells at a loss."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F, Q

from kameng.suppliers.models import SupplierOffer


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
