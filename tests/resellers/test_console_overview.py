"""The reseller console's overview (sales, margin and commission per day and per product, as SVG charts and
tables) and its price list (拿货价)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kameng.catalog.pricing import SALES_CHANNEL_BATCH, SALES_CHANNEL_OPENAPI
from kameng.orders.models import Order
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.resellers.models import Earning, EarningKind, EarningState
from kameng.resellers.stats import bar_chart, reseller_stats
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.resellers.support import reseller_make, tier_make

pytestmark = pytest.mark.django_db
RULES = ["kameng.membership.pricing.member_price_rule", "kameng.resellers.pricing.reseller_price_rule"]


@pytest.fixture(autouse=True)
def _rules(settings: Any) -> None:
    settings.KAMENG_PRICE_RULES = RULES


def _buy(user_id: int, sku_id: int, quantity: int, channel: str) -> Order:
    return purchase_create(buyer_id=user_id, sku_id=sku_id, quantity=quantity, payment=PaymentChoice(PayBy.WALLET),
                           request_id=None, sales_channel=channel).order


def _earning(user_id: int, order: Order, kind: str, amount: str, *, reversed_amount: str = "0.00",
             level: int = 0) -> Earning:
    return Earning.objects.create(kind=kind, beneficiary_id=user_id, order=order, level=level, amount=Decimal(amount),
                                  reversed_amount=Decimal(reversed_amount), state=EarningState.PENDING,
                                  available_at=timezone.now() + timedelta(days=7))


def test_stats_per_day_and_per_product_with_exact_amounts() -> None:
    reseller = reseller_make(tier_make(discount="20.00"))
    fund_wallet(reseller.user, "1000.00")
    gift = SkuFactory.create(price=Decimal("10.00"), product__name="抖币")
    other = SkuFactory.create(price=Decimal("50.00"), product__name="Q币")
    stock_sku(gift, 30)
    stock_sku(other, 5)
    first = _buy(reseller.user_id, gift.pk, 20, SALES_CHANNEL_BATCH)  # 160.00
    second = _buy(reseller.user_id, other.pk, 2, SALES_CHANNEL_OPENAPI)  # 80.00
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    someone_elses = _buy(buyer.pk, gift.pk, 1, "storefront")
    _earning(reseller.user_id, someone_elses, EarningKind.MARGIN, "1.50")
    _earning(reseller.user_id, someone_elses, EarningKind.COMMISSION, "0.80", reversed_amount="0.30", level=1)
    _earning(buyer.pk, first, EarningKind.COMMISSION, "9.99", level=1)  # not the reseller's

    stats = reseller_stats(user_id=reseller.user_id)

    assert len(stats.days) == 30
    today = stats.days[-1]
    assert (today.key, today.orders, today.quantity, today.sales) == (
        timezone.localdate().isoformat(), 2, 22, Decimal("240.00"))
    assert (today.margin, today.commission) == (Decimal("1.50"), Decimal("0.50"))
    assert all(day.sales == 0 for day in stats.days[:-1])
    assert [(row.key, row.orders, row.quantity, row.sales, row.margin, row.commission) for row in stats.products] == [
        ("抖币", 1, 20, Decimal("160.00"), Decimal("1.50"), Decimal("0.50")),
        ("Q币", 1, 2, Decimal("80.00"), Decimal("0.00"), Decimal("0.00"))]
    assert (stats.totals.sales, stats.totals.margin, stats.totals.commission) == (
        Decimal("240.00"), Decimal("1.50"), Decimal("0.50"))
    assert second.total_amount == Decimal("80.00")


def test_bar_chart_geometry_scales_to_the_largest_value() -> None:
    chart = bar_chart(title="t", points=[("a", Decimal("0")), ("b", Decimal("50")), ("c", Decimal("100"))],
                      width=300, height=120)
    assert [bar.height for bar in chart.bars] == [0.0, 50.0, 100.0]  # plot height 120 - 16 - 4
    assert [bar.x for bar in chart.bars] == [30.0, 130.0, 230.0]  # 40 wide (the most), centred in 100
    assert [bar.width for bar in chart.bars] == [40.0, 40.0, 40.0]
    assert [bar.y for bar in chart.bars] == [104.0, 54.0, 4.0]
    assert chart.maximum == Decimal("100")
    empty = bar_chart(title="t", points=[("a", Decimal("0"))])
    assert [bar.height for bar in empty.bars] == [0.0]
    assert (empty.first_label, empty.last_label) == ("a", "")  # one product: its name once, not at both ends
    month = bar_chart(title="t", points=[(str(day), Decimal(day)) for day in range(30)], width=600)
    assert {bar.width for bar in month.bars} == {16.0}  # 30 days: 80 % of each day's 20


def test_overview_page_draws_accessible_svg_charts_and_tables(client: Client) -> None:
    reseller = reseller_make(tier_make(discount="20.00"))
    fund_wallet(reseller.user, "100.00")
    sku = SkuFactory.create(price=Decimal("10.00"), product__name="抖币")
    stock_sku(sku, 5)
    _buy(reseller.user_id, sku.pk, 5, SALES_CHANNEL_BATCH)
    client.force_login(reseller.user)
    page = client.get(reverse("web:reseller_home")).content.decode()
    assert page.count("<svg") == 4
    assert 'role="img"' in page
    assert "<title id=\"chart-1-title\">每日销售额（元） · 最高 40.00</title>" in page
    assert 'data-testid="reseller-totals"' in page
    assert "¥40.00" in page
    assert "<script" not in page.split('data-testid="reseller-stats"')[1].split("</section>")[0]


def test_pending_reseller_overview_has_no_stats(client: Client) -> None:
    reseller = reseller_make(tier_make(), status="pending")
    client.force_login(reseller.user)
    page = client.get(reverse("web:reseller_home")).content.decode()
    assert "<svg" not in page
    assert 'data-status="pending"' in page


def test_price_list_shows_retail_and_the_resellers_price(client: Client) -> None:
    reseller = reseller_make(tier_make(name="总代理", discount="30.00"))
    sku = SkuFactory.create(price=Decimal("10.00"), product__name="抖币", floor_price=Decimal("7.50"))
    client.force_login(reseller.user)
    page = client.get(reverse("web:reseller_prices")).content.decode()
    row = page.split(f'data-sku="{sku.pk}"')[1].split("</tr>")[0]
    assert "¥10.00" in row
    assert 'data-testid="reseller-price">¥7.50<' in row  # 30 % off is 7.00, the floor keeps it at 7.50
    assert "¥2.50" in row
