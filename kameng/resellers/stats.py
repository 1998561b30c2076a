"""What the reseller console's overview shows: a reseller's sales, margin and commission per day and per product,
and the geometry of the bar charts that draw them (inline SVG rendered on the server; no script, no CDN).

Sales are the orders the reseller's user bought and paid, through any channel (the Open API, batch purchase, the
storefront), by the day they were paid, net of refunds. Margin (分站利润) and commission (推广佣金) are its earnings
(`Earning` rows whose beneficiary is the reseller's user), by the day they were recorded, net of reversals; their
rows are written elsewhere and only read here. Days are the site's local days (settings.TIME_ZONE).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from kameng.core.money import ZERO, money
from kameng.orders.models import Order
from kameng.resellers.models import Earning, EarningKind

STATS_DAYS = 30


@dataclass
class StatsRow:
    """One day's or one product's figures."""

    key: str  # the day (YYYY-MM-DD) or the product's name
    orders: int = 0
    quantity: int = 0
    sales: Decimal = ZERO
    margin: Decimal = ZERO
    commission: Decimal = ZERO


@dataclass
class ResellerStats:
    days: list[StatsRow]
    products: list[StatsRow]
    totals: StatsRow = field(default_factory=lambda: StatsRow(key=""))


def _since(days: int, today: date) -> tuple[date, datetime]:
    first = today - timedelta(days=days - 1)
    return first, datetime.combine(first, time.min, tzinfo=timezone.get_current_timezone())


def reseller_stats(*, user_id: int, days: int = STATS_DAYS, today: date | None = None) -> ResellerStats:
    """The figures of the last `days` days (today included) for the reseller's user: four grouped queries."""
    today = today or timezone.localdate()
    first, start = _since(days, today)
    tz = timezone.get_current_timezone()
    by_day = {(first + timedelta(days=offset)).isoformat(): StatsRow(key=(first + timedelta(days=offset)).isoformat())
              for offset in range(days)}
    by_product: dict[str, StatsRow] = defaultdict(lambda: StatsRow(key=""))

    paid = Order.objects.filter(buyer_id=user_id, paid_at__gte=start)
    for row in (paid.annotate(day=TruncDate("paid_at", tzinfo=tz)).values("day")
                .annotate(orders=Count("pk"), quantity=Sum("quantity"),
                          sales=Sum(F("total_amount") - F("refunded_amount")))):
        day = by_day.get(row["day"].isoformat())
        if day is not None:
            day.orders, day.quantity, day.sales = row["orders"], row["quantity"] or 0, money(row["sales"] or ZERO)
    for product_row in (paid.values(name=F("sku__product__name"))
                        .annotate(orders=Count("pk"), quantity=Sum("quantity"),
                                  sales=Sum(F("total_amount") - F("refunded_amount")))):
        product = by_product[product_row["name"]]
        product.key = product_row["name"]
        product.orders, product.quantity = product_row["orders"], product_row["quantity"] or 0
        product.sales = money(product_row["sales"] or ZERO)

    earned = Earning.objects.filter(beneficiary_id=user_id, created_at__gte=start)
    net = Sum(F("amount") - F("reversed_amount"))
    for earning_day in earned.annotate(day=TruncDate("created_at", tzinfo=tz)).values("day", "kind").annotate(
            net=net):
        day = by_day.get(earning_day["day"].isoformat())
        if day is not None:
            _add_earning(day, earning_day["kind"], earning_day["net"])
    for earning_product in earned.values("kind", name=F("order__sku__product__name")).annotate(net=net):
        product = by_product[earning_product["name"]]
        product.key = earning_product["name"]
        _add_earning(product, earning_product["kind"], earning_product["net"])

    day_rows = list(by_day.values())
    totals = StatsRow(key="", orders=sum(row.orders for row in day_rows),
                      quantity=sum(row.quantity for row in day_rows),
                      sales=money(sum((row.sales for row in day_rows), ZERO)),
                      margin=money(sum((row.margin for row in day_rows), ZERO)),
                      commission=money(sum((row.commission for row in day_rows), ZERO)))
    products = sorted(by_product.values(), key=lambda row: (-row.sales, -row.margin - row.commission, row.key))
    return ResellerStats(days=day_rows, products=products, totals=totals)


def _add_earning(row: StatsRow, kind: str, amount: Decimal | None) -> None:
    if kind == EarningKind.MARGIN:
        row.margin = money(row.margin + (amount or ZERO))
    else:
        row.commission = money(row.commission + (amount or ZERO))


# --- bar charts ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: Decimal


@dataclass(frozen=True)
class BarChart:
    """An SVG bar chart's geometry: `width` × `height` view box, bars from the bottom, the largest value on top."""

    title: str
    width: int
    height: int
    bars: tuple[Bar, ...]
    maximum: Decimal
    first_label: str
    last_label: str

    @property
    def baseline(self) -> int:
        return self.height - CHART_LABEL_SPACE


CHART_LABEL_SPACE = 16  # below the bars: the first and last labels
CHART_BAR_MAX_WIDTH = 40  # a chart of a few points (one product) draws slim bars, not one block across the chart


def bar_chart(*, title: str, points: Sequence[tuple[str, Decimal]], width: int = 600,
              height: int = 140) -> BarChart:
    """Bars for (label, value) points, side by side over `width` (each centred in its share of the width, at most
    CHART_BAR_MAX_WIDTH wide), scaled to the largest value (negative values are drawn as 0). A single point has
    one label under it, not the same label at both ends."""
    maximum = max((value for _, value in points), default=ZERO)
    plot = height - CHART_LABEL_SPACE - 4  # room above the tallest bar
    slot = width / max(len(points), 1)
    bar_width = min(slot * 0.8, CHART_BAR_MAX_WIDTH)
    bars = []
    for index, (label, value) in enumerate(points):
        share = float(value / maximum) if maximum > 0 and value > 0 else 0.0
        bar_height = round(share * plot, 1)
        bars.append(Bar(x=round(index * slot + (slot - bar_width) / 2, 1),
                        y=round(height - CHART_LABEL_SPACE - bar_height, 1),
                        width=round(bar_width, 1), height=bar_height, label=label, value=value))
    return BarChart(title=title, width=width, height=height, bars=tuple(bars), maximum=maximum,
                    first_label=points[0][0] if points else "",
                    last_label=points[-1][0] if len(points) > 1 else "")
