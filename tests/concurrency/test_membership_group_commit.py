"""Member prices on PostgreSQL: the group-commit batch prices every buyer as the single path and the price
function do, and the spend of concurrent checkouts is counted once per order (the listener runs after each batch)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings

from kameng.catalog.pricing import SALES_CHANNEL_STOREFRONT, sku_price
from kameng.catalog.selectors import skus_for_sale
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.ledger.services import wallet_account_id
from kameng.membership.models import CountedOrder, MemberLevel, MemberPrice, Membership
from kameng.membership.services import member_prices_changed, membership_orders_count
from kameng.orders.group_commit import _Checkout, write_batch, writer_stop
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.membership.support import levels_install, member_at

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _group_commit(settings: Settings) -> Iterator[None]:
    requires_postgresql()
    settings.KAMENG_CHECKOUT_GROUP_COMMIT = True
    settings.KAMENG_ORDER_AFTERCARE = ["kameng.membership.services.membership_orders_count"]
    levels_install()
    yield
    writer_stop()


def _members(spends: list[tuple[str, int]]) -> list[int]:
    buyer_ids = []
    for spend, rank in spends:
        buyer = UserFactory.create()
        member_at(buyer, spend, rank)
        fund_wallet(buyer, "100.00")
        buyer_ids.append(buyer.pk)
    return buyer_ids


def test_the_batch_prices_members_as_the_single_path_does() -> None:
    plain = SkuFactory.create(price=Decimal("9.80"))
    special = SkuFactory.create(price=Decimal("10.00"), floor_price=Decimal("9.00"))
    stock_sku(plain, 20)
    stock_sku(special, 20)
    MemberPrice.objects.create(level=MemberLevel.objects.get(rank=4), sku=special, price=Decimal("8.50"))
    member_prices_changed()
    levels = [("0.00", 0), ("600.00", 2), ("5000.00", 4), ("30000.00", 5)]
    batched, single = _members(levels), _members(levels)
    batch = [_Checkout(buyer_id=buyer_id, wallet_id=wallet_account_id(user_id=buyer_id), sku_id=sku.pk, quantity=2,
                       request_id=f"b-{sku.pk}-{buyer_id}") for buyer_id in batched for sku in (plain, special)]

    write_batch(batch)
    for buyer_id in single:
        for sku in (plain, special):
            order_checkout(batched=False, buyer_id=buyer_id, sku_id=sku.pk, quantity=2,
                           request_id=f"s-{sku.pk}-{buyer_id}")

    assert all(checkout.order is not None for checkout in batch)
    for_sale = skus_for_sale(sku_ids=[plain.pk, special.pk])
    seen = []
    for batched_id, single_id in zip(batched, single, strict=True):
        for sku in (plain, special):
            ours = Order.objects.get(buyer_id=batched_id, sku=sku)
            theirs = Order.objects.get(buyer_id=single_id, sku=sku)
            quote = sku_price(sku=for_sale[sku.pk], buyer_id=batched_id, quantity=2,
                              sales_channel=SALES_CHANNEL_STOREFRONT)
            assert (ours.unit_price, ours.total_amount, ours.price_lines) == (
                theirs.unit_price, theirs.total_amount, theirs.price_lines) == (
                quote.unit_price, quote.total, quote.lines_json())
            seen.append(ours.unit_price)
    # VIP0, VIP2 (98 折), VIP4 (95 折; the SKU's 8.50 held at its 9.00 floor), VIP5 (92 折; inherits VIP4's row).
    assert seen == [Decimal("9.80"), Decimal("10.00"), Decimal("9.60"), Decimal("9.80"),
                    Decimal("9.31"), Decimal("9.00"), Decimal("9.02"), Decimal("9.00")]
    assert ledger_problems() == []


def test_counting_a_batch_costs_the_same_statements_whatever_its_size() -> None:
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 20)
    buyer_ids = _members([("0.00", 0)] * 13)
    write_batch([_Checkout(buyer_id=buyer_ids[0], wallet_id=wallet_account_id(user_id=buyer_ids[0]),
                           sku_id=sku.pk, quantity=1, request_id="warm")])
    counts = []
    for first, size in ((1, 3), (4, 9)):
        order_ids = [order_checkout(batched=False, buyer_id=buyer_id, sku_id=sku.pk, quantity=1,
                                    request_id=f"n-{buyer_id}").order.pk
                     for buyer_id in buyer_ids[first:first + size]]
        CountedOrder.objects.filter(order_id__in=order_ids).delete()  # as if not heard yet
        Membership.objects.filter(user_id__in=buyer_ids[first:first + size]).update(spend=0)
        with CaptureQueriesContext(connection) as captured:
            membership_orders_count(order_ids=order_ids, event="delivered")
        counts.append(len(captured.captured_queries))

    # One statement (orders locked, counted rows upserted, spend and level moved), whatever the batch's size.
    assert counts == [1, 1]
    assert sorted(Membership.objects.values_list("spend", flat=True)) == [Decimal("5.00")] * 13


def test_concurrent_member_checkouts_count_each_order_once() -> None:
    sku = SkuFactory.create(price=Decimal("30.00"))
    stock_sku(sku, 60)
    buyer_ids = _members([("90.00", 0)] * 20)

    outcomes = run_in_threads(20, lambda i: order_checkout(
        batched=True, buyer_id=buyer_ids[i], sku_id=sku.pk, quantity=1, request_id=f"m-{i}"))

    assert unexpected(outcomes) == []
    assert Order.objects.filter(status=OrderStatus.DELIVERED).count() == 20
    assert CountedOrder.objects.count() == 20
    # 90 + 30 = 120: every buyer crossed VIP1's threshold (100) with this order, and at once.
    assert sorted(Membership.objects.values_list("spend", "level_rank")) == [(Decimal("120.00"), 1)] * 20
    assert all(wallet_balance(user_id=buyer_id) == Decimal("70.00") for buyer_id in buyer_ids)

    again = order_checkout(batched=True, buyer_id=buyer_ids[0], sku_id=sku.pk, quantity=1, request_id="after")
    assert again.order.unit_price == Decimal("29.70")  # VIP1's 99 折 on the next order
    assert Membership.objects.get(user_id=buyer_ids[0]).spend == Decimal("149.70")


def test_the_same_orders_heard_in_many_threads_at_once_count_once() -> None:
    sku = SkuFactory.create(price=Decimal("40.00"))
    stock_sku(sku, 10)
    buyer_ids = _members([("0.00", 0)] * 3)
    order_ids = [order_checkout(batched=False, buyer_id=buyer_id, sku_id=sku.pk, quantity=1,
                                request_id=f"t-{buyer_id}").order.pk for buyer_id in buyer_ids]
    CountedOrder.objects.all().delete()
    Membership.objects.update(spend=0, level_rank=0)

    outcomes = run_in_threads(8, lambda i: membership_orders_count(order_ids=order_ids, event="delivered"))

    assert unexpected(outcomes) == []
    assert sorted(Membership.objects.values_list("spend", flat=True)) == [Decimal("40.00")] * 3
    assert CountedOrder.objects.count() == 3
