"""Card keys bought from an upstream supplier (上游卡密) when the platform's stock cannot fill a card-key order.

Named by `settings.KAMENG_CARD_KEY_UPSTREAM` (`UPSTREAM`), asked by kameng.orders (kameng.orders.upstream, which
says when and where the money sits): first the order tries the keys held on the platform — its own stock and
suppliers' uploaded keys, in card-key bidding order (kameng.suppliers.card_key_bidding) — and only when they cannot
fill it does it come here.

- `is_available(order)`: an offer of the SKU passes the direct top-up routing rules for this order
  (kameng.suppliers.routing: approved supplier reached through an upstream connector, offer active and sourced
  UPSTREAM — uploaded-key offers are the stock above —, not excluded, upstream stock enough, under its daily cap,
  not at a loss against the order's unit price).
- `fulfil(order)`: PAID → FULFILLING ("正在发货"), routed to the best offer, its attempt RECORDED in this transaction
  and submitted after commit as a TopupKind.CARD request (`fulu.order.card.add`, or the other kameng site's
  `POST /orders`). From there it is a direct top-up's pipeline (kameng.suppliers.topup, dispatch): recorded before
  sent, never called inside a transaction, a timeout queried before anything else, the same number resubmitted
  only when the upstream certainly never got it, a confirmed failure failed over to the next offer, every offer
  failed → the whole total back to the wallet once. What a success must carry, and what becomes of its cards:
  kameng.suppliers.topup (`_cards_succeeded`) and kameng.inventory.upstream_keys.
- `skus_sold_upstream`, `card_key_stock`: what the product lists show of it — "上游供货" on the storefront, the
  platform's keys plus the upstream offers' stock in the Open API — by routing's own checks without an order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from django.utils.translation import gettext_noop as _

from kameng.catalog.models import DeliveryKind
from kameng.inventory.selectors import stock_by_sku
from kameng.orders.events import fact
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.state import transition
from kameng.suppliers.routing import offers_eligible, upstream_stock_by_sku
from kameng.suppliers.topup import order_route_first

REASON_NO_CARD_OFFER = _("暂无可用的供货商，库存不足")


class UpstreamCards:
    """kameng.orders.upstream.CardKeyUpstream, for the suppliers."""

    def is_available(self, order: Order) -> bool:
        return bool(offers_eligible(order=order))

    def fulfil(self, order: Order) -> list[OrderEvent]:
        if order.status != OrderStatus.PAID:
            return []
        events = [transition(order, OrderStatus.FULFILLING, said=fact(OrderEventKind.FULFILLING))]
        return events + order_route_first(order, reason=REASON_NO_CARD_OFFER)


UPSTREAM = UpstreamCards()


def skus_sold_upstream(sku_ids: Iterable[int]) -> set[int]:
    """The card-key SKUs among these that an upstream offer can sell at the retail price now (for the storefront:
    such a SKU is buyable with no key in stock, "上游供货"): those routing would route one unit of
    (kameng.suppliers.routing.upstream_stock_by_sku)."""
    ids = set(sku_ids)
    if not ids:
        return set()
    return set(upstream_stock_by_sku(unit_prices=dict.fromkeys(ids), delivery_kind=DeliveryKind.CARD_KEY))


def card_key_stock(*, unit_prices: Mapping[int, Decimal | None]) -> dict[int, int]:
    """What a buyer paying `unit_prices[sku_id]` per unit (None: the retail price) can get of each card-key SKU now:
    the keys held on the platform (kameng.inventory.selectors.stock_by_sku, cached a few seconds) plus what the
    eligible upstream offers can sell (`upstream_stock_by_sku`, routing's checks at that price). Every SKU named is
    in the answer (0 when neither has any). The Open API's product list reports this, so a downstream site that
    docks onto us routes to a SKU only an upstream stocks."""
    ids = sorted(unit_prices)
    if not ids:
        return {}
    held = stock_by_sku(ids)
    upstream = upstream_stock_by_sku(unit_prices=unit_prices, delivery_kind=DeliveryKind.CARD_KEY)
    return {sku_id: held.get(sku_id, 0) + upstream.get(sku_id, 0) for sku_id in ids}
