"""Supplier star ratings (供货商星级): recomputed daily from five components, stored as a snapshot per day.

The window is the last `KAMENG_SUPPLIER_RATING_WINDOW_DAYS` days (30 by default) up to the end of the day rated.
The supplier's orders in it are its card-key orders (orders holding sold keys of the supplier, sold in the window)
and its direct top-ups (its `TopupAttempt`s finished in the window, succeeded or failed). Each component is a raw
figure, normalised linearly to 0..1 between the bounds below and clamped:

====================  ===========================================================  =================  ===========
component             raw figure                                                   0 at               1 at
====================  ===========================================================  =================  ===========
success (成功率)      (succeeded top-ups + card-key orders without after-sales)    ≤ 80 %             100 %
                      ÷ (finished top-ups + card-key orders)
delivery (到账时间)   median seconds from `submitted_at` to `finished_at` of the    ≥ 300 s            ≤ 10 s
                      succeeded top-ups; a card-key order counts 0 s (instant)
after-sales (售后率)  delivered orders that went to after-sales or were refunded    ≥ 5 %              0 %
                      after delivery ÷ delivered orders
price (价格竞争力)    per active offer, how much its price is above the cheapest    ≥ 20 % above       cheapest
                      active offer of an approved supplier for the SKU, averaged
stock (库存稳定性)    share of the daily samples with stock: each day's snapshot    ≤ 50 %             100 %
                      samples the share of its active offers that have stock (card
                      keys available, or upstream stock unknown or > 0) and the
                      window's samples are averaged
====================  ===========================================================  =================  ===========

score = Σ weight × component, the weights from `RatingWeights` (staff, summing to 1); stars = 1 + 4 × score,
rounded half up to 0.01. A component without data (no offers, no top-ups) counts 0.5. A supplier with fewer than
`KAMENG_SUPPLIER_RATING_MIN_ORDERS` orders in the window keeps 3.00 stars and its reasons say so. Each snapshot keeps
the raw figures, the components and the reasons (Chinese sentences such as "成功率 92%（低于 95%）") the console
shows; `Supplier.rating` is set to the day's stars, which routing and the storefront's offer listing read.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.orders.models import OrderEvent, OrderStatus
from kameng.suppliers.models import (
    AttemptStatus,
    OfferStockSource,
    RatingSnapshot,
    RatingWeights,
    Supplier,
    SupplierOffer,
    SupplierStatus,
    TopupAttempt,
)

PROVISIONAL_STARS = Decimal("3.00")
NEUTRAL = 0.5
SUCCESS_BOUNDS = (0.80, 1.00)  # rate at 0, rate at 1
SUCCESS_EXPECTED = 0.95  # below it the reasons say so
DELIVERY_BOUNDS = (300.0, 10.0)  # seconds at 0, seconds at 1
AFTER_SALES_BOUNDS = (0.05, 0.0)
PRICE_BOUNDS = (0.20, 0.0)  # premium over the cheapest offer at 0, at 1
STOCK_BOUNDS = (0.50, 1.00)
AFTER_SALES_STATUSES = (OrderStatus.AFTER_SALES, OrderStatus.REFUNDED, OrderStatus.PARTIALLY_REFUNDED)
RATED_STATUSES = (SupplierStatus.APPROVED, SupplierStatus.SUSPENDED)


def normalise(value: float, bounds: tuple[float, float]) -> float:
    """Linear from bounds[0] (→ 0) to bounds[1] (→ 1), clamped to 0..1; the bounds may run either way."""
    zero, one = bounds
    return min(1.0, max(0.0, (value - zero) / (one - zero)))


@dataclass
class Figures:
    """The raw figures of one supplier over the window."""

    orders: int = 0
    success_rate: float | None = None
    delivery_seconds: float | None = None
    after_sales_rate: float | None = None
    price_premium: float | None = None
    stock_sample: float | None = None
    stock_stability: float | None = None
    reasons: list[str] = field(default_factory=list)


def _percent(value: float) -> str:
    return f"{value * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _window(day: date) -> tuple[datetime, datetime]:
    end = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
    return end - timedelta(days=settings.KAMENG_SUPPLIER_RATING_WINDOW_DAYS), end


def supplier_figures(*, supplier_id: int, day: date) -> Figures:
    """Measure the supplier over the window ending with `day` (its stock sampled now)."""
    start, end = _window(day)
    figures = Figures()
    attempts = TopupAttempt.objects.filter(supplier_id=supplier_id, finished_at__gte=start, finished_at__lt=end,
                                           status__in=[AttemptStatus.SUCCEEDED, AttemptStatus.FAILED])
    finished = list(attempts.values_list("order_id", "status", "submitted_at", "finished_at"))
    succeeded = [row for row in finished if row[1] == AttemptStatus.SUCCEEDED]
    card_orders = set(CardKey.objects.filter(supplier_id=supplier_id, status=CardKeyStatus.SOLD, sold_at__gte=start,
                                             sold_at__lt=end, order__isnull=False).values_list("order_id", flat=True))
    delivered = card_orders | {row[0] for row in succeeded}
    troubled = set(OrderEvent.objects.filter(order_id__in=delivered, to_status__in=AFTER_SALES_STATUSES)
                   .values_list("order_id", flat=True)) if delivered else set()
    figures.orders = len(finished) + len(card_orders)
    if figures.orders:
        good = len(succeeded) + len(card_orders - troubled)
        figures.success_rate = good / figures.orders
    seconds = [(row[3] - row[2]).total_seconds() for row in succeeded if row[2] and row[3]]
    seconds += [0.0] * len(card_orders)
    if seconds:
        figures.delivery_seconds = max(0.0, statistics.median(seconds))
    if delivered:
        figures.after_sales_rate = len(troubled) / len(delivered)
    figures.price_premium = _price_premium(supplier_id)
    figures.stock_sample = _stock_sample(supplier_id)
    samples = [float(value) for value in RatingSnapshot.objects.filter(
        supplier_id=supplier_id, day__gt=day - timedelta(days=settings.KAMENG_SUPPLIER_RATING_WINDOW_DAYS),
        day__lt=day).values_list("stock_sample", flat=True) if value is not None]
    if figures.stock_sample is not None:
        samples.append(figures.stock_sample)
    if samples:
        figures.stock_stability = sum(samples) / len(samples)
    return figures


def _price_premium(supplier_id: int) -> float | None:
    offers = list(SupplierOffer.objects.filter(supplier_id=supplier_id, is_active=True).values_list("sku_id", "price"))
    if not offers:
        return None
    cheapest = dict(SupplierOffer.objects.filter(
        sku_id__in=[sku_id for sku_id, _ in offers], is_active=True, supplier__status=SupplierStatus.APPROVED,
    ).values("sku_id").annotate(low=Min("price")).values_list("sku_id", "low"))
    premiums = [float(price / cheapest.get(sku_id, price)) - 1 for sku_id, price in offers]
    return max(0.0, sum(premiums) / len(premiums))


def _stock_sample(supplier_id: int) -> float | None:
    offers = list(SupplierOffer.objects.filter(supplier_id=supplier_id, is_active=True).values_list(
        "sku_id", "stock_source", "upstream_stock"))
    if not offers:
        return None
    now = timezone.now()
    stocked = set(CardKey.objects.filter(supplier_id=supplier_id, status=CardKeyStatus.AVAILABLE).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)).values_list("sku_id", flat=True).distinct())
    with_stock = sum(1 for sku_id, source, upstream in offers
                     if (sku_id in stocked if source == OfferStockSource.CARD_KEYS
                         else upstream is None or upstream > 0))
    return with_stock / len(offers)


def rating_components(figures: Figures) -> dict[str, float]:
    """Each component normalised to 0..1 (NEUTRAL without data), with the reasons appended to `figures.reasons`."""
    reasons = figures.reasons
    components: dict[str, float] = {}
    if figures.success_rate is None:
        components["success"] = NEUTRAL
        reasons.append("暂无已完成的订单，成功率按中等计")
    else:
        components["success"] = normalise(figures.success_rate, SUCCESS_BOUNDS)
        below = f"（低于 {_percent(SUCCESS_EXPECTED)}）" if figures.success_rate < SUCCESS_EXPECTED else ""
        reasons.append(f"成功率 {_percent(figures.success_rate)}{below}")
    if figures.delivery_seconds is None:
        components["delivery"] = NEUTRAL
    else:
        components["delivery"] = normalise(figures.delivery_seconds, DELIVERY_BOUNDS)
        reasons.append(f"平均到账 {round(figures.delivery_seconds)} 秒（中位数）")
    if figures.after_sales_rate is None:
        components["after_sales"] = NEUTRAL
    else:
        components["after_sales"] = normalise(figures.after_sales_rate, AFTER_SALES_BOUNDS)
        reasons.append(f"售后率 {_percent(figures.after_sales_rate)}")
    if figures.price_premium is None:
        components["price"] = NEUTRAL
        reasons.append("暂无启用的报价，价格竞争力按中等计")
    else:
        components["price"] = normalise(figures.price_premium, PRICE_BOUNDS)
        reasons.append("报价均为最低价" if figures.price_premium == 0
                       else f"报价平均高于最低价 {_percent(figures.price_premium)}")
    if figures.stock_stability is None:
        components["stock"] = NEUTRAL
    else:
        components["stock"] = normalise(figures.stock_stability, STOCK_BOUNDS)
        reasons.append(f"有货率 {_percent(figures.stock_stability)}")
    return components


def rating_stars(components: dict[str, float], weights: RatingWeights) -> tuple[Decimal, Decimal]:
    """(score 0..1, stars 1..5): the weighted sum of the components, and 1 + 4 × score rounded to 0.01."""
    score = (
        weights.success_weight * Decimal(str(components["success"]))
        + weights.delivery_weight * Decimal(str(components["delivery"]))
        + weights.after_sales_weight * Decimal(str(components["after_sales"]))
        + weights.price_weight * Decimal(str(components["price"]))
        + weights.stock_weight * Decimal(str(components["stock"]))
    )
    score = min(Decimal("1"), max(Decimal("0"), score))
    stars = (1 + 4 * score).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return score.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP), stars


def _decimal(value: float | None, places: str = "0.0001") -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def supplier_rating_compute(*, supplier_id: int, day: date, weights: RatingWeights | None = None) -> RatingSnapshot:
    """Rate the supplier for `day`: write (or replace) its snapshot of that day and set `Supplier.rating`."""
    weights = weights or RatingWeights.current()
    figures = supplier_figures(supplier_id=supplier_id, day=day)
    components = rating_components(figures)
    score, stars = rating_stars(components, weights)
    minimum = settings.KAMENG_SUPPLIER_RATING_MIN_ORDERS
    provisional = figures.orders < minimum
    if provisional:
        figures.reasons.insert(0, f"近 {settings.KAMENG_SUPPLIER_RATING_WINDOW_DAYS} 天订单 {figures.orders} 笔，"
                                  f"不足 {minimum} 笔：数据不足，暂按 3.00 星")
        stars = PROVISIONAL_STARS
    values = {
        "stars": stars, "score": None if provisional else score, "is_provisional": provisional,
        "orders_count": figures.orders, "success_rate": _decimal(figures.success_rate),
        "delivery_seconds": None if figures.delivery_seconds is None else round(figures.delivery_seconds),
        "after_sales_rate": _decimal(figures.after_sales_rate), "price_premium": _decimal(figures.price_premium),
        "stock_sample": _decimal(figures.stock_sample), "stock_stability": _decimal(figures.stock_stability),
        "components": {name: f"{value:.4f}" for name, value in components.items()},
        "reasons": "\n".join(figures.reasons),
    }
    with transaction.atomic():
        snapshot, _ = RatingSnapshot.objects.update_or_create(supplier_id=supplier_id, day=day, defaults=values)
        Supplier.objects.filter(pk=supplier_id).update(rating=stars)
    return snapshot


def ratings_recompute(*, day: date | None = None) -> int:
    """Rate every approved or suspended supplier for `day` (today by default); idempotent per day. Returns how many."""
    day = day or timezone.localdate()
    weights = RatingWeights.current()
    supplier_ids = list(Supplier.objects.filter(status__in=RATED_STATUSES).values_list("pk", flat=True))
    for supplier_id in supplier_ids:
        supplier_rating_compute(supplier_id=supplier_id, day=day, weights=weights)
    return len(supplier_ids)
