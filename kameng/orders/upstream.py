"""Card keys bought from an upstream when the platform's stock runs out (上游卡密): the seam between orders and the
suppliers, and where the money of such an order sits.

A card-key SKU is sold from the keys held on the platform (its own and suppliers' uploaded keys, card-key bidding
in kameng.inventory.services). When none are left for an order and an upstream offer of the SKU could take it
(`settings.KAMENG_CARD_KEY_UPSTREAM` names the object that says so and routes it: orders may not import the
suppliers, `kameng.suppliers.upstream_cards.UPSTREAM` by default), the SKU is not sold out: the order waits for the
upstream as a direct top-up does.

- A paid checkout (wallet) that finds no key is written PAID instead of DELIVERED, its money paid into the
  ledger's orders-in-progress hold (not revenue), and fulfilled after commit (kameng.orders.fulfilment): the stock
  is tried once more, then the upstream gets the whole order (an order is filled from one source: the stock or one
  upstream attempt at a time, never partly from each).
- An unpaid checkout (gateway payment) that finds no key to reserve is written without keys; when it is paid its
  fulfilment runs then (`order_pay_with_wallet`), the upstream taking it if the stock still has nothing.
- The upstream's answer delivers the order (its keys stored as the order's, the hold released to revenue) or fails
  it (the next offer, or the whole total back to the wallet from the hold, once): kameng.suppliers.topup.

Whether an order's money is held is read from the ledger (`order_money_held`): the payment journal says where it
went, so a refund or a late delivery from restocked keys moves it from the right account.
"""

from __future__ import annotations

from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from kameng.catalog.models import DeliveryKind
from kameng.ledger.models import AccountKind, Entry, JournalKind, Side
from kameng.orders.models import Order, OrderEvent


class CardKeyUpstream(Protocol):
    def is_available(self, order: Order) -> bool:
        """Whether an upstream offer could take this (written, not yet fulfilled) card-key order now."""
        ...

    def fulfil(self, order: Order) -> list[OrderEvent]:
        """Hand the locked PAID order to the upstream (PAID → FULFILLING, routed, its attempt recorded and sent
        after commit); DELIVERY_FAILED when no offer is left (the caller refunds). The unsaved events."""
        ...


@cache
def _load(path: str) -> CardKeyUpstream:
    return import_string(path)


def card_key_upstream() -> CardKeyUpstream | None:
    path = getattr(settings, "KAMENG_CARD_KEY_UPSTREAM", "")
    return _load(path) if path else None


def card_key_upstream_takes(order: Order) -> bool:
    """Whether a card-key order that the stock cannot fill may wait for an upstream instead of failing."""
    upstream = card_key_upstream()
    return upstream is not None and upstream.is_available(order)


def order_money_held(order: Order, *, delivery_kind: str) -> bool:
    """Whether the order's payment sits in orders-in-progress: always for the kinds fulfilled later; for card keys
    only when the order was paid while waiting for an upstream (its payment journal credited the hold)."""
    if delivery_kind != DeliveryKind.CARD_KEY:
        return True
    return Entry.objects.filter(journal__kind=JournalKind.ORDER_PAYMENT, journal__reference=order.number,
                                account__kind=AccountKind.ORDERS_IN_PROGRESS, side=Side.CREDIT).exists()
