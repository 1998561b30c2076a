"""Routing (竞价): which supplier's offer fulfils a paid direct top-up order, and why.

An offer is eligible when its supplier is approved and reached through an upstream connector, the offer is active
and sourced upstream, staff have not excluded the supplier for the SKU (`SkuRoutingRule` EXCLUDE), the upstream's
last known stock covers the quantity (None: the upstream does not say), the offer has not reached its daily cap
(`max_per_day` counts the attempts routed to it since local midnight that did not fail: a soft cap, two orders
routed at the same instant may both take the last place), it does not sell at a loss against the price this order
pays per unit (`kameng.suppliers.selectors.price_sells_at_loss`, the one loss guard: a VIP's member price, not the
retail price; staff may allow a loss per offer), and it was not tried for this order already.

Among the eligible offers a supplier pinned for the SKU (PIN) comes first; then the lowest price; on a tie the
higher star rating (five-star suppliers get priority), then the older offer. The decision and its reason are
written on the order's timeline (ROUTED, staff only) by the caller.

The same checks, without an order, say how many units a SKU's upstream offers could sell now
(`upstream_stock_by_sku`): what the product lists add to the platform's stock for a card-key SKU
(kameng.suppliers.upstream_cards), so that a list never says 0 of what routing would sell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_noop as _

from kameng.orders.fulfilment import batch_memo
from kameng.orders.models import Order
from kameng.suppliers.models import (
    AttemptStatus,
    ConnectorKind,
    OfferStockSource,
    RoutingRuleKind,
    SkuRoutingRule,
    SupplierOffer,
    SupplierStatus,
    TopupAttempt,
)
from kameng.suppliers.selectors import offer_not_at_loss_q

REASON_PINNED = _("指定供货商")
REASON_CHEAPEST = _("最低价")
REASON_RATING = _("评分优先")
# What a listing counts for an upstream offer whose stock the upstream does not say (as the Open API reports a
# made-to-order SKU): routing takes such an offer for any quantity until the upstream refuses.
UNKNOWN_UPSTREAM_STOCK = 9999


@dataclass(frozen=True)
class Route:
    offer: SupplierOffer
    reason: str  # REASON_*: the Chinese text (a msgid), rendered in the reader's language on the timeline


def _today_start() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def offers_eligible(*, order: Order) -> list[SupplierOffer]:
    """The offers that may take this order, best first (pin, price, rating, age)."""
    return _ranked(order, tried=None)[0]


def _checks(order: Order, *, excluded: set[int], tried: set[int]) -> list[tuple[str, Q]]:
    """What an offer of the order's SKU must pass to take the order, each with what staff read when it does not
    (the daily cap apart: it counts attempts, `_routed_today`). Routing applies them all; `route_refusals` says which
    one each offer failed."""
    return _offer_checks(quantity=order.quantity, is_excluded=Q(supplier_id__in=excluded), tried=tried,
                         loss=(f"亏本（供货价高于订单单价 ¥{order.unit_price}）",
                               offer_not_at_loss_q(unit_price=order.unit_price)))


def _offer_checks(*, quantity: int, is_excluded: Q, tried: set[int], loss: tuple[str, Q]) -> list[tuple[str, Q]]:
    """The checks themselves, for an order (`_checks`) or for what a listing may promise (`upstream_stock_by_sku`):
    `is_excluded` matches the offers staff excluded, `loss` is the loss guard at the price paid with its reason."""
    return [
        ("供货商未通过审核或已暂停", Q(supplier__status=SupplierStatus.APPROVED)),
        ("报价已停用", Q(is_active=True)),
        ("非上游直充报价或手工库存供货商",
         Q(stock_source=OfferStockSource.UPSTREAM) & ~Q(supplier__connector_kind=ConnectorKind.MANUAL)),
        ("已被工作人员排除", ~is_excluded),
        ("本单已尝试过", ~Q(pk__in=tried)),
        ("上游库存不足", Q(upstream_stock__isnull=True) | Q(upstream_stock__gte=quantity)),
        loss,
    ]


def upstream_stock_by_sku(*, unit_prices: Mapping[int, Decimal | None],
                          delivery_kind: str | None = None) -> dict[int, int]:
    """How many units the upstream offers could sell of each SKU now, for a buyer paying `unit_prices[sku_id]` per
    unit (None: the retail price) — what a product list may promise beside the platform's own stock. The offers that
    would take a first route for one unit (the routing checks above: approved upstream supplier, active UPSTREAM
    offer, not excluded for the SKU, upstream stock not 0, not at a loss at that price, under its daily cap), their
    last synced upstream stock summed; an upstream that does not say counts UNKNOWN_UPSTREAM_STOCK. SKUs without
    such an offer are left out; `delivery_kind` keeps only SKUs of that kind. An order is filled by one offer, so
    one order for more than the largest offer's stock still finds none."""
    prices = {sku_id: price for sku_id, price in unit_prices.items() if price is not None}
    excluded = Exists(SkuRoutingRule.objects.filter(sku_id=OuterRef("sku_id"), supplier_id=OuterRef("supplier_id"),
                                                    kind=RoutingRuleKind.EXCLUDE))
    checks = _offer_checks(quantity=1, is_excluded=Q(excluded), tried=set(),
                           loss=("亏本", offer_not_at_loss_q(unit_prices=prices)))
    offers = SupplierOffer.objects.filter(sku_id__in=sorted(unit_prices)).filter(*(check for _, check in checks))
    if delivery_kind is not None:
        offers = offers.filter(sku__product__delivery_kind=delivery_kind)
    stock: dict[int, int] = {}
    for offer in _under_daily_cap(list(offers.only("pk", "sku_id", "upstream_stock", "max_per_day"))):
        units = UNKNOWN_UPSTREAM_STOCK if offer.upstream_stock is None else offer.upstream_stock
        stock[offer.sku_id] = stock.get(offer.sku_id, 0) + units
    return stock


def _rules(order: Order) -> tuple[dict[int, str], set[int]]:
    rules = dict(SkuRoutingRule.objects.filter(sku_id=order.sku_id).values_list("supplier_id", "kind"))
    return rules, {supplier_id for supplier_id, kind in rules.items() if kind == RoutingRuleKind.EXCLUDE}


def _tried(order: Order) -> set[int]:
    return set(TopupAttempt.objects.filter(order_id=order.pk).values_list("offer_id", flat=True))


def _ranked(order: Order, *, tried: set[int] | None) -> tuple[list[SupplierOffer], set[int]]:
    """In a fulfilment batch a first route (nothing tried) is the same for every order of a SKU, quantity and
    price while no candidate has a daily cap (a cap counts the attempts routed so far): it is looked up once."""
    memo = batch_memo() if tried is not None and not tried else None
    key = ("route", order.sku_id, order.quantity, order.unit_price)
    if memo is not None and key in memo:
        return memo[key]  # type: ignore[return-value]
    ranked, pinned, capped = _ranked_now(order, tried=tried)
    if memo is not None and not capped:
        memo[key] = (ranked, pinned)
    return ranked, pinned


def _ranked_now(order: Order, *, tried: set[int] | None) -> tuple[list[SupplierOffer], set[int], bool]:
    rules, excluded = _rules(order)
    checks = _checks(order, excluded=excluded, tried=_tried(order) if tried is None else tried)
    offers = list(SupplierOffer.objects.select_related("supplier").filter(sku_id=order.sku_id)
                  .filter(*(check for _, check in checks)))
    capped = any(offer.max_per_day is not None for offer in offers)
    candidates = _under_daily_cap(offers)
    pinned = {supplier_id for supplier_id, kind in rules.items() if kind == RoutingRuleKind.PIN}
    ranked = sorted(candidates, key=lambda offer: (offer.supplier_id not in pinned, offer.price,
                                                   -offer.supplier.rating, offer.pk))
    return ranked, pinned, capped


def _under_daily_cap(candidates: list[SupplierOffer]) -> list[SupplierOffer]:
    capped = [offer for offer in candidates if offer.max_per_day is not None]
    if not capped:
        return candidates
    used = _routed_today(offer_ids=[offer.pk for offer in capped])
    return [offer for offer in candidates if offer.max_per_day is None or used.get(offer.pk, 0) < offer.max_per_day]


def route_refusals(*, order: Order) -> str:
    """Why no offer can take the order, for staff's timeline: each offer of its SKU with the first check it fails
    ("甲：亏本（…）；乙：已被工作人员排除"), or that the SKU has no offer at all."""
    _, excluded = _rules(order)
    checks = _checks(order, excluded=excluded, tried=_tried(order))
    flags = {f"check_{index}": ExpressionWrapper(check, output_field=BooleanField())
             for index, (_, check) in enumerate(checks)}
    offers = list(SupplierOffer.objects.filter(sku_id=order.sku_id).select_related("supplier").annotate(**flags)
                  .order_by("price", "pk"))
    if not offers:
        return "该商品没有任何供货商报价"
    passing = _under_daily_cap([offer for offer in offers if all(getattr(offer, name) for name in flags)])
    said = []
    for offer in offers:
        failed = next((reason for name, (reason, _) in zip(flags, checks, strict=True) if not getattr(offer, name)),
                      None if offer in passing else "已达每日上限")
        said.append(f"{offer.supplier.name}：{failed or '可用'}")
    return "；".join(said)[:500]


def _routed_today(*, offer_ids: list[int]) -> dict[int, int]:
    rows = (TopupAttempt.objects.filter(offer_id__in=offer_ids, created_at__gte=_today_start())
            .exclude(status=AttemptStatus.FAILED).values_list("offer_id", flat=True))
    used: dict[int, int] = {}
    for offer_id in rows:
        used[offer_id] = used.get(offer_id, 0) + 1
    return used


def order_route(*, order: Order, is_first: bool = False) -> Route | None:
    """The offer this order goes to next and why; None when no offer is eligible (the order is refunded).
    `is_first`: the order has no attempt yet (its first route), so none is looked up."""
    ranked, pinned = _ranked(order, tried=set() if is_first else None)
    if not ranked:
        return None
    best = ranked[0]
    if best.supplier_id in pinned:
        return Route(offer=best, reason=REASON_PINNED)
    runner_up = ranked[1] if len(ranked) > 1 else None
    if runner_up is not None and runner_up.price == best.price and runner_up.supplier.rating < best.supplier.rating:
        return Route(offer=best, reason=REASON_RATING)
    return Route(offer=best, reason=REASON_CHEAPEST)
