from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from pytest_django.fixtures import Settings

from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.orders.models import Order, OrderEvent, OrderStatus
from kameng.suppliers.models import AttemptStatus, RatingSnapshot, RatingWeights, Supplier, SupplierOffer, TopupAttempt
from kameng.suppliers.ratings import Figures, rating_components, rating_stars, supplier_rating_compute
from kameng.suppliers.tasks import recompute_ratings
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory, UserFactory, stock_sku

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("figure", "value", "component", "expected"), [
    ("success_rate", 0.80, "success", 0.0), ("success_rate", 0.50, "success", 0.0),
    ("success_rate", 0.90, "success", 0.5), ("success_rate", 1.0, "success", 1.0),
    ("delivery_seconds", 10.0, "delivery", 1.0), ("delivery_seconds", 0.0, "delivery", 1.0),
    ("delivery_seconds", 155.0, "delivery", 0.5), ("delivery_seconds", 300.0, "delivery", 0.0),
    ("delivery_seconds", 9000.0, "delivery", 0.0),
    ("after_sales_rate", 0.0, "after_sales", 1.0), ("after_sales_rate", 0.025, "after_sales", 0.5),
    ("after_sales_rate", 0.05, "after_sales", 0.0), ("after_sales_rate", 0.5, "after_sales", 0.0),
    ("price_premium", 0.0, "price", 1.0), ("price_premium", 0.10, "price", 0.5), ("price_premium", 0.20, "price", 0.0),
    ("price_premium", 1.0, "price", 0.0),
    ("stock_stability", 1.0, "stock", 1.0), ("stock_stability", 0.75, "stock", 0.5),
    ("stock_stability", 0.5, "stock", 0.0), ("stock_stability", 0.1, "stock", 0.0),
])
def test_each_component_is_normalised_between_its_bounds(figure: str, value: float, component: str,
                                                         expected: float) -> None:
    figures = Figures()
    setattr(figures, figure, value)
    components = rating_components(figures)
    assert components[component] == pytest.approx(expected)
    assert all(components[name] == 0.5 for name in components if name != component)


def test_stars_are_one_plus_four_times_the_weighted_score() -> None:
    weights = RatingWeights.current()
    ones = dict.fromkeys(["success", "delivery", "after_sales", "price", "stock"], 1.0)
    zeros = dict.fromkeys(ones, 0.0)
    assert rating_stars(ones, weights) == (Decimal("1.0000"), Decimal("5.00"))
    assert rating_stars(zeros, weights) == (Decimal("0.0000"), Decimal("1.00"))
    # Default weights 0.35/0.2/0.2/0.15/0.1: success alone perfect → 0.35 → 2.40 stars.
    assert rating_stars({**zeros, "success": 1.0}, weights) == (Decimal("0.3500"), Decimal("2.40"))
    weights.success_weight, weights.price_weight = Decimal("0.150"), Decimal("0.350")
    assert rating_stars({**zeros, "price": 1.0, "stock": 0.5}, weights) == (Decimal("0.4000"), Decimal("2.60"))
    assert rating_stars({**zeros, "delivery": 0.333}, weights) == (Decimal("0.0666"), Decimal("1.27"))


def test_weights_must_sum_to_one() -> None:
    weights = RatingWeights.current()
    weights.full_clean()
    weights.stock_weight = Decimal("0.200")
    with pytest.raises(ValidationError, match="五项权重之和必须等于 1"):
        weights.full_clean()
    assert RatingWeights.objects.count() == 1


def _attempts(offer: SupplierOffer, succeeded: int, failed: int, seconds: int = 45) -> list[Order]:
    now = timezone.now()
    orders = []
    for index in range(succeeded + failed):
        order = Order.objects.create(number=f"T{offer.pk}-{index}", buyer=UserFactory.create(), sku=offer.sku,
                                     title="直充", quantity=1, unit_price=Decimal("10.00"),
                                     total_amount=Decimal("10.00"), status=OrderStatus.DELIVERED)
        TopupAttempt.objects.create(
            order=order, offer=offer, supplier=offer.supplier, sequence=1, customer_order_no=f"C{order.pk}",
            cost=offer.price, status=AttemptStatus.SUCCEEDED if index < succeeded else AttemptStatus.FAILED,
            submitted_at=now - timedelta(seconds=seconds + index), finished_at=now - timedelta(seconds=index))
        orders.append(order)
    return orders


def test_too_little_data_keeps_three_stars_and_says_so(settings: Settings) -> None:
    settings.KAMENG_SUPPLIER_RATING_MIN_ORDERS = 20
    offer = SupplierOfferFactory.create(price=Decimal("9.00"))
    _attempts(offer, succeeded=3, failed=0, seconds=5)
    snapshot = supplier_rating_compute(supplier_id=offer.supplier_id, day=timezone.localdate())
    assert snapshot.stars == Decimal("3.00")
    assert snapshot.is_provisional is True
    assert snapshot.score is None
    assert snapshot.orders_count == 3
    assert snapshot.reason_lines[0] == "近 30 天订单 3 笔，不足 20 笔：数据不足，暂按 3.00 星"
    assert Supplier.objects.get(pk=offer.supplier_id).rating == Decimal("3.00")


def test_a_snapshot_keeps_the_figures_components_and_reasons(settings: Settings) -> None:
    settings.KAMENG_SUPPLIER_RATING_MIN_ORDERS = 20
    sku = SkuFactory.create(price=Decimal("10.00"))
    offer = SupplierOfferFactory.create(sku=sku, price=Decimal("9.90"), upstream_stock=5)
    SupplierOfferFactory.create(sku=sku, price=Decimal("9.00"))
    orders = _attempts(offer, succeeded=23, failed=2, seconds=45)
    OrderEvent.objects.create(order=orders[0], from_status=OrderStatus.DELIVERED, to_status=OrderStatus.AFTER_SALES,
                              kind="after_sales")
    snapshot = supplier_rating_compute(supplier_id=offer.supplier_id, day=timezone.localdate())
    assert snapshot.is_provisional is False
    assert snapshot.orders_count == 25
    assert snapshot.success_rate == Decimal("0.9200")
    assert snapshot.delivery_seconds == 45
    assert snapshot.after_sales_rate == Decimal("0.0435")  # 1 of 23 delivered
    assert snapshot.price_premium == Decimal("0.1000")
    assert snapshot.stock_sample == Decimal("1.0000")
    assert snapshot.stock_stability == Decimal("1.0000")
    assert snapshot.components == {"success": "0.6000", "delivery": "0.8793", "after_sales": "0.1304",
                                   "price": "0.5000", "stock": "1.0000"}
    # 0.35×0.6 + 0.2×0.8793 + 0.2×0.1304 + 0.15×0.5 + 0.1×1 = 0.5869 → 1 + 4 × 0.5869 = 3.35
    assert snapshot.score == Decimal("0.5869")
    assert snapshot.stars == Decimal("3.35")
    assert snapshot.reason_lines == ["成功率 92%（低于 95%）", "平均到账 45 秒（中位数）", "售后率 4.3%",
                                     "报价平均高于最低价 10%", "有货率 100%"]
    assert Supplier.objects.get(pk=offer.supplier_id).rating == Decimal("3.35")


def test_card_key_orders_count_instant_and_successful_unless_they_went_to_after_sales(
        settings: Settings) -> None:
    settings.KAMENG_SUPPLIER_RATING_MIN_ORDERS = 4
    sku = SkuFactory.create(price=Decimal("10.00"))
    offer = SupplierOfferFactory.create(sku=sku, price=Decimal("9.00"), stock_source="card_keys")
    stock_sku(sku, 5)
    keys = list(CardKey.objects.filter(sku=sku).order_by("pk"))
    now = timezone.now()
    for index, key in enumerate(keys[:4]):
        order = Order.objects.create(number=f"K{index}", buyer=UserFactory.create(), sku=sku, title="卡密",
                                     quantity=1, unit_price=Decimal("10.00"), total_amount=Decimal("10.00"),
                                     status=OrderStatus.DELIVERED)
        CardKey.objects.filter(pk=key.pk).update(supplier=offer.supplier, cost=offer.price, order=order,
                                                 status=CardKeyStatus.SOLD, sold_at=now)
        if index == 0:
            OrderEvent.objects.create(order=order, from_status=OrderStatus.DELIVERED, to_status=OrderStatus.REFUNDED,
                                      kind="refunded")
    CardKey.objects.filter(pk=keys[4].pk).update(supplier=offer.supplier, cost=offer.price)
    snapshot = supplier_rating_compute(supplier_id=offer.supplier_id, day=timezone.localdate())
    assert (snapshot.orders_count, snapshot.success_rate, snapshot.delivery_seconds, snapshot.after_sales_rate,
            snapshot.stock_sample) == (4, Decimal("0.7500"), 0, Decimal("0.2500"), Decimal("1.0000"))
    assert snapshot.components["success"] == "0.0000"
    assert snapshot.components["delivery"] == "1.0000"


def test_stock_stability_averages_the_daily_samples_of_the_window(settings: Settings) -> None:
    settings.KAMENG_SUPPLIER_RATING_MIN_ORDERS = 0
    supplier = SupplierFactory.create()
    SupplierOfferFactory.create(supplier=supplier, upstream_stock=0)
    SupplierOfferFactory.create(supplier=supplier, upstream_stock=None)
    today = timezone.localdate()
    for days_ago, sample in ((1, "1.0000"), (2, "0.5000"), (40, "0.0000")):  # 40 days ago: outside the window
        RatingSnapshot.objects.create(supplier=supplier, day=today - timedelta(days=days_ago), stars=Decimal("3"),
                                      stock_sample=Decimal(sample))
    snapshot = supplier_rating_compute(supplier_id=supplier.pk, day=today)
    assert snapshot.stock_sample == Decimal("0.5000")  # one offer of two has stock today
    assert snapshot.stock_stability == Decimal("0.6667")  # (1 + 0.5 + 0.5) / 3


def test_the_daily_task_writes_one_snapshot_per_supplier_per_day(settings: Settings) -> None:
    settings.KAMENG_SUPPLIER_RATING_MIN_ORDERS = 1
    offer = SupplierOfferFactory.create()
    _attempts(offer, succeeded=2, failed=0, seconds=5)
    SupplierFactory.create(status="draft")  # not rated before approval
    assert recompute_ratings() == 1
    first = RatingSnapshot.objects.get()
    assert recompute_ratings() == 1
    again = RatingSnapshot.objects.get()
    assert again.pk == first.pk
    assert (again.stars, again.reasons, again.components) == (first.stars, first.reasons, first.components)
    assert again.stars == Supplier.objects.get(pk=offer.supplier_id).rating


def test_beat_runs_the_ratings_once_a_day() -> None:
    from kameng.celery import app

    entry = app.conf.beat_schedule["suppliers-recompute-ratings"]
    assert entry["task"] == recompute_ratings.name
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({0}, {20})
