"""Points of a group-commit batch on PostgreSQL: every order delivered together earns in one go, exactly once, and
a later refund still takes its points back order by order."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from pytest_django.fixtures import Settings

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import points_balance
from kameng.orders.group_commit import writer_stop
from kameng.orders.models import Order
from kameng.orders.refunds import order_refund_to_wallet
from kameng.orders.services import order_checkout
from kameng.points.models import OrderPoints
from kameng.points.services import points_aftercare
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _points_listening(settings: Settings) -> Iterator[None]:
    requires_postgresql()
    settings.KAMENG_CHECKOUT_GROUP_COMMIT = True
    settings.KAMENG_ORDER_AFTERCARE = ["kameng.points.services.points_aftercare"]
    settings.KAMENG_PRICE_RULES = []
    yield
    writer_stop()


def test_a_batch_earns_once_per_order_and_a_refund_takes_back_its_share() -> None:
    sku = SkuFactory.create(price=Decimal("12.60"))
    stock_sku(sku, 60)
    buyers = [UserFactory.create() for _ in range(24)]
    for buyer in buyers:
        fund_wallet(buyer, "100.00")

    outcomes = run_in_threads(24, lambda i: order_checkout(
        batched=True, buyer_id=buyers[i].pk, sku_id=sku.pk, quantity=2, request_id=f"pb-{i}"))

    assert unexpected(outcomes) == []
    orders = list(Order.objects.order_by("pk"))
    assert len(orders) == 24
    assert Journal.objects.filter(kind=JournalKind.POINTS_EARN).count() == 24
    assert all(points_balance(user_id=buyer.pk) == 25 for buyer in buyers)  # floor(25.20 × 1)
    assert set(OrderPoints.objects.values_list("earned", "journals")) == {(25, 1)}

    points_aftercare(order_ids=[order.pk for order in orders], event="delivered")  # heard again: nothing new
    assert Journal.objects.filter(kind__startswith="points").count() == 24

    order_refund_to_wallet(order_id=orders[0].pk, amount=Decimal("12.60"), reference="pb-refund")
    assert points_balance(user_id=orders[0].buyer_id) == 12  # floor(12.60 kept × 1)
    assert Journal.objects.filter(kind=JournalKind.POINTS_EARN_REVERSAL).count() == 1


def test_two_runs_creating_the_same_buyers_accounts_do_not_deadlock(monkeypatch: pytest.MonkeyPatch,
                                                                     settings: Settings) -> None:
    """Two aftercare runs at once, each the first points of the same two buyers, their orders in opposite buyer
    order: each run creates its first account and waits for the other (a barrier) before the next. Created in
    order of the run's orders, each would then wait for the other's uncommitted account (deadlock); created in
    buyer order, the second waits for the first to commit and finds its accounts."""
    import contextlib
    import threading

    from kameng.ledger.models import Account, AccountKind
    from kameng.ledger.services import system_account_id

    settings.KAMENG_ORDER_AFTERCARE = []  # the orders are written first; the two runs below are the aftercare
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 4)
    first, second = UserFactory.create(), UserFactory.create()
    for buyer in (first, second):
        fund_wallet(buyer, "100.00")
    orders = {}
    for index, buyer in enumerate((second, first, first, second)):  # run A: second, first; run B: first, second
        orders[index] = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id=f"pd-{index}").order
    runs = [[orders[0].pk, orders[1].pk], [orders[2].pk, orders[3].pk]]
    system_account_id(kind=AccountKind.POINTS_ISSUED)  # the platform's side exists, as after the first points ever

    create = Account.objects.create
    both_created_one = threading.Barrier(2)
    waited: set[str] = set()

    def create_then_meet(**fields: object) -> Account:
        account = create(**fields)
        if fields.get("kind") == AccountKind.POINTS and threading.current_thread().name not in waited:
            waited.add(threading.current_thread().name)
            # broken when the other run waits on this one's account: go on and commit
            with contextlib.suppress(threading.BrokenBarrierError):
                both_created_one.wait(timeout=2)
        return account

    monkeypatch.setattr(Account.objects, "create", create_then_meet)
    outcomes = run_in_threads(2, lambda i: points_aftercare(order_ids=runs[i], event="delivered"))

    assert unexpected(outcomes) == []
    assert points_balance(user_id=first.pk) == 20
    assert points_balance(user_id=second.pk) == 20
    assert Account.objects.filter(kind=AccountKind.POINTS, owner__in=[first, second]).count() == 2
    assert Journal.objects.filter(kind=JournalKind.POINTS_EARN).count() == 4
