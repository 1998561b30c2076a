"""Paid orders handed to the worker in batches (kameng.orders.fulfilment_queue) and the `fulfil_orders` task that
fulfils a batch in one transaction (kameng.orders.tasks)."""

from __future__ import annotations

import itertools
import logging
import threading

import pytest
from pytest_django.fixtures import Settings

from kameng.catalog.models import Sku
from kameng.orders import fulfilment_queue, tasks
from kameng.orders.fulfilment import order_fulfilment_enqueue
from kameng.orders.models import Order, OrderStatus
from tests.factories import SkuFactory, UserFactory, manual_sku
from tests.topup_support import phone_topup_sku


class _Broker:
    """`fulfil_orders.delay` captured; the first send waits until the test lets it go (a burst queues behind it)."""

    def __init__(self) -> None:
        self.sent: list[list[int]] = []
        self.first_sending = threading.Event()
        self.first_may_go = threading.Event()

    def delay(self, order_ids: list[int]) -> None:
        self.sent.append(list(order_ids))
        if len(self.sent) == 1:
            self.first_sending.set()
            self.first_may_go.wait(5)


def test_orders_committed_together_go_as_few_batched_tasks(settings: Settings,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.KAMENG_FULFIL_BATCH_MAX = 4
    broker = _Broker()
    monkeypatch.setattr(tasks.fulfil_orders, "delay", broker.delay)
    try:
        order_fulfilment_enqueue(order_id=1)  # alone: sent at once, and held in the send
        assert broker.first_sending.wait(5)
        for order_id in range(2, 11):  # a burst while the first send is in flight
            order_fulfilment_enqueue(order_id=order_id)
        broker.first_may_go.set()
    finally:
        fulfilment_queue.fulfilment_publisher_flush()

    assert broker.sent == [[1], [2, 3, 4, 5], [6, 7, 8, 9], [10]]


def test_a_broker_that_is_down_loses_nothing_but_the_message(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False

    def down(order_ids: list[int]) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.fulfil_orders, "delay", down)
    with caplog.at_level(logging.ERROR, logger="kameng.orders.fulfilment_queue"):
        order_fulfilment_enqueue(order_id=7)  # does not raise in the caller (after its commit)
        fulfilment_queue.fulfilment_publisher_flush()
    assert "could not enqueue the fulfilment of 1 orders" in caplog.text
    # a later enqueue starts a new publisher
    sent: list[list[int]] = []
    monkeypatch.setattr(tasks.fulfil_orders, "delay", sent.append)
    order_fulfilment_enqueue(order_id=8)
    fulfilment_queue.fulfilment_publisher_flush()
    assert sent == [[8]]


@pytest.mark.django_db
def test_with_eager_tasks_each_order_is_fulfilled_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    fulfilled: list[int] = []
    monkeypatch.setattr(tasks, "order_fulfil", lambda *, order_id: fulfilled.append(order_id))
    order_fulfilment_enqueue(order_id=3)
    assert fulfilled == [3]


_numbers = itertools.count(1)


def _paid_order(sku: Sku, price: str = "5.00") -> Order:
    return Order.objects.create(number=f"KTEST{next(_numbers):08d}", buyer=UserFactory.create(), sku=sku, title="t",
                                quantity=1, unit_price=price, total_amount=price, status=OrderStatus.PAID)


def _paid_manual_order() -> Order:
    return _paid_order(manual_sku("5.00"))


@pytest.mark.django_db
def test_the_batch_task_fulfils_its_orders_and_a_second_delivery_changes_nothing() -> None:
    orders = [_paid_manual_order() for _ in range(3)]
    ids = [order.pk for order in orders]

    assert tasks.fulfil_orders(ids) == 3
    assert tasks.fulfil_orders(ids) == 0  # delivered twice: the orders are past paid

    assert set(Order.objects.filter(pk__in=ids).values_list("status", flat=True)) == {OrderStatus.FULFILLING}


@pytest.mark.django_db
def test_one_order_that_cannot_be_fulfilled_does_not_hold_up_its_batch(caplog: pytest.LogCaptureFixture) -> None:
    good = [_paid_manual_order() for _ in range(2)]
    broken = _paid_manual_order()
    Order.objects.filter(pk=broken.pk).update(sku=SkuFactory.create(product__delivery_kind="no_such_kind"))

    with caplog.at_level(logging.ERROR, logger="kameng.orders.tasks"):
        moved = tasks.fulfil_orders([good[0].pk, broken.pk, good[1].pk])

    assert moved == 2
    assert "fulfilling them one by one" in caplog.text
    statuses = dict(Order.objects.values_list("pk", "status"))
    assert (statuses[good[0].pk], statuses[good[1].pk], statuses[broken.pk]) == (
        OrderStatus.FULFILLING, OrderStatus.FULFILLING, OrderStatus.PAID)  # the sweeper tries it again


@pytest.mark.django_db
def test_a_direct_topup_bought_after_commit_is_handed_over_in_a_batch(settings: Settings,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent: list[list[int]] = []
    monkeypatch.setattr(tasks.fulfil_orders, "delay", sent.append)
    order = _paid_order(phone_topup_sku("10.00"), "10.00")
    order_fulfilment_enqueue(order_id=order.pk)
    fulfilment_queue.fulfilment_publisher_flush()
    assert sent == [[order.pk]]
