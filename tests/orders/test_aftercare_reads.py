"""The aftercare run's shared read (`aftercare_orders`): one statement for every listener of a run, the facts the
listeners choose their orders by, and listeners that cost no query of their own for orders that are not theirs."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings

from kameng.inventory.models import CardKey
from kameng.ledger.models import AccountKind, JournalKind
from kameng.ledger.selectors import points_balance
from kameng.ledger.services import credit, debit, journal_post, points_account_id, system_account_id
from kameng.notices.listeners import orders_delivered_email
from kameng.orders.aftercare import aftercare_orders, aftercare_run
from kameng.orders.models import Order, OrderStatus
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.suppliers.settlement import settlement_aftercare
from tests.factories import SkuFactory, SupplierFactory, UserFactory, fund_wallet, manual_sku, stock_sku

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


@pytest.fixture(autouse=True)
def _no_listeners(settings: Settings) -> None:
    settings.KAMENG_ORDER_AFTERCARE = []  # the orders are written without aftercare; each test runs what it names


def _card_key_orders(count: int, *, email: str = "", supplier: bool = False) -> list[Order]:
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, count, prefix=f"R{sku.pk}")
    if supplier:
        CardKey.objects.filter(sku=sku).update(supplier=SupplierFactory.create(), cost=Decimal("9.00"))
    orders = []
    for index in range(count):
        buyer = UserFactory.create(email=email)
        fund_wallet(buyer, "10.00")
        orders.append(purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id=f"r-{index}",
                                      payment=PaymentChoice(PayBy.WALLET)).order)
    return orders


def test_the_read_gives_each_order_its_columns_and_facts() -> None:
    platform = _card_key_orders(1, email="a@example.com")[0]
    supplied = _card_key_orders(1, supplier=True)[0]
    buyer = UserFactory.create()
    fund_wallet(buyer, "58.00")
    manual = purchase_create(buyer_id=buyer.pk, sku_id=manual_sku("58.00").pk, quantity=1, request_id="m-1",
                             payment=PaymentChoice(PayBy.WALLET)).order

    rows = aftercare_orders([supplied.pk, manual.pk, platform.pk, platform.pk, 999_999])

    assert list(rows) == sorted([platform.pk, supplied.pk, manual.pk])  # id order; an unknown id is left out
    row = rows[platform.pk]
    assert (row.number, row.buyer_id, row.sku_id, row.title, row.quantity, row.status) == (
        platform.number, platform.buyer_id, platform.sku_id, platform.title, 1, OrderStatus.DELIVERED)
    assert (row.total_amount, row.refunded_amount, row.buyer_email) == (Decimal("10.00"), Decimal("0.00"),
                                                                        "a@example.com")
    assert row.delivered_at is not None
    assert (row.holds_card_keys, row.holds_supplier_keys) == (True, False)
    assert (rows[supplied.pk].holds_card_keys, rows[supplied.pk].holds_supplier_keys) == (True, True)
    assert (rows[manual.pk].holds_card_keys, rows[manual.pk].holds_supplier_keys) == (False, False)
    assert rows[manual.pk].delivered_at is None
    assert aftercare_orders([]) == {}


def test_one_run_reads_the_orders_once_for_all_its_listeners() -> None:
    orders = _card_key_orders(3)
    ids = [order.pk for order in orders]
    seen: list[int] = []

    def reader(*, order_ids: list[int], event: str) -> None:
        seen.append(len(aftercare_orders(order_ids)))

    with CaptureQueriesContext(connection) as queries:
        aftercare_run(order_ids=ids, event="delivered", listeners=lambda: (reader, reader, reader))
    assert seen == [3, 3, 3]
    assert len(queries) == 1

    with CaptureQueriesContext(connection) as queries:  # outside a run, every call reads
        aftercare_orders(ids)
        aftercare_orders(ids)
    assert len(queries) == 2


def test_a_run_forgets_its_read_when_it_ends_even_when_a_listener_fails() -> None:
    orders = _card_key_orders(1)

    def failing(*, order_ids: list[int], event: str) -> None:
        aftercare_orders(order_ids)
        raise ValueError("broke")

    with pytest.raises(ValueError, match="broke"):
        aftercare_run(order_ids=[orders[0].pk], event="delivered", listeners=lambda: (failing,))
    Order.objects.filter(pk=orders[0].pk).update(title="改过的标题")

    assert aftercare_orders([orders[0].pk])[orders[0].pk].title == "改过的标题"


def test_settlement_and_the_email_cost_no_query_for_platform_stock_bought_by_buyers_without_an_address() -> None:
    orders = _card_key_orders(3)
    ids = [order.pk for order in orders]

    with CaptureQueriesContext(connection) as queries:
        aftercare_run(order_ids=ids, event="delivered",
                      listeners=lambda: (orders_delivered_email, settlement_aftercare))

    assert len(queries) == 1  # the shared read, nothing else


def test_settlement_still_finds_supplier_keys_and_the_email_still_goes(
        mailoutbox: list[Any], settings: Settings) -> None:
    settings.SITE_URL = "https://shop.example.com"
    supplied = _card_key_orders(1, supplier=True, email="b@example.com")[0]
    plain = _card_key_orders(1)[0]

    aftercare_run(order_ids=[supplied.pk, plain.pk], event="delivered",
                  listeners=lambda: (orders_delivered_email, settlement_aftercare))

    from kameng.suppliers.models import SupplierSettlement

    assert list(SupplierSettlement.objects.values_list("order_id", flat=True)) == [supplied.pk]
    assert [message.to for message in mailoutbox] == [["b@example.com"]]


def test_a_journal_mixing_known_wallet_and_points_accounts_is_still_refused(
        django_capture_on_commit_callbacks: Capture) -> None:
    """Points accounts this process created are known without a lookup; their unit is known all the same."""
    from kameng.core.errors import ApplicationError
    from kameng.ledger.services import wallet_account_id

    user = UserFactory.create()
    with django_capture_on_commit_callbacks(execute=True):  # ids are remembered once their rows are committed
        fund_wallet(user, "10.00")
        points = points_account_id(user_id=user.pk)
        issued = system_account_id(kind=AccountKind.POINTS_ISSUED)
    journal_post(kind=JournalKind.POINTS_EARN, reference="earn-1",
                 legs=[debit(issued, Decimal(5)), credit(points, Decimal(5))])

    with CaptureQueriesContext(connection) as queries:
        journal_post(kind=JournalKind.POINTS_EARN, reference="earn-2",
                     legs=[debit(issued, Decimal(3)), credit(points, Decimal(3))])
    assert not [query for query in queries if "ledger_account" in query["sql"] and "SELECT" in query["sql"]]
    assert points_balance(user_id=user.pk) == 8

    with pytest.raises(ApplicationError) as mixed:
        journal_post(kind=JournalKind.ADJUSTMENT, reference="mixed", legs=[
            debit(wallet_account_id(user_id=user.pk), Decimal("1.00")), credit(points, Decimal("1.00"))])
    assert mixed.value.code == "ledger_mixed_units"
    with pytest.raises(ApplicationError) as half:
        journal_post(kind=JournalKind.POINTS_EARN, reference="half",
                     legs=[debit(issued, Decimal("0.50")), credit(points, Decimal("0.50"))])
    assert half.value.code == "ledger_points_not_whole"


def test_the_sender_merges_what_queued_up_into_one_task_per_event(monkeypatch: pytest.MonkeyPatch) -> None:
    from kameng.orders import aftercare
    from kameng.orders.tasks import order_aftercare_run

    sent: list[tuple[list[int], str]] = []
    monkeypatch.setattr(order_aftercare_run, "delay", lambda ids, event: sent.append((ids, event)))
    monkeypatch.setattr(aftercare, "SEND_MAX_IDS", 3)

    aftercare._publish([([5, 1], "delivered"), ([1, 2], "delivered"), ([9], "refunded"), ([7, 8], "delivered")])

    assert sent == [([1, 2, 5], "delivered"), ([7, 8], "delivered"), ([9], "refunded")]


def test_outside_eager_mode_a_commit_hands_the_ids_to_the_sender_thread(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, django_capture_on_commit_callbacks: Capture) -> None:
    """The committing thread (the checkout writer) does not publish; the sender does, soon after, and a broker
    that refuses is logged, never raised into the commit."""
    import threading

    from kameng.orders import aftercare
    from kameng.orders.tasks import order_aftercare_run

    settings.KAMENG_ORDER_AFTERCARE = ["tests.orders.test_aftercare.recording_listener"]
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent: list[tuple[list[int], str, str]] = []
    arrived = threading.Event()

    def delay(ids: list[int], event: str) -> None:
        sent.append((ids, event, threading.current_thread().name))
        arrived.set()
        if event == "refunded":
            raise ConnectionError("broker down")

    monkeypatch.setattr(order_aftercare_run, "delay", delay)
    with django_capture_on_commit_callbacks(execute=True):
        aftercare.order_aftercare(order_ids=[3, 2], event=aftercare.AftercareEvent.DELIVERED)
    assert arrived.wait(5)
    with django_capture_on_commit_callbacks(execute=True):
        aftercare.order_aftercare(order_ids=[4], event=aftercare.AftercareEvent.REFUNDED)
    for _ in range(100):
        if len(sent) == 2:
            break
        threading.Event().wait(0.05)

    assert [(ids, event) for ids, event, _thread in sent] == [([2, 3], "delivered"), ([4], "refunded")]
    assert {thread for _ids, _event, thread in sent} == {"kameng-aftercare-sender"}


def _sender_recording(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[tuple[list[int], str, float]], Any]:
    """A sender of its own (not this process's) whose tasks are recorded with the time they went out, and the
    condition notified at each."""
    import threading
    import time

    from kameng.orders import aftercare
    from kameng.orders.tasks import order_aftercare_run

    sent: list[tuple[list[int], str, float]] = []
    arrived = threading.Condition()

    def delay(ids: list[int], event: str) -> None:
        with arrived:
            sent.append((ids, event, time.monotonic()))
            arrived.notify_all()

    monkeypatch.setattr(order_aftercare_run, "delay", delay)
    return aftercare._Sender(), sent, arrived


def test_the_sender_gathers_the_commits_of_its_gathering_time_into_one_task(
        monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    import time

    settings.KAMENG_ORDER_AFTERCARE_GATHER_SECONDS = 0.6
    sender, sent, arrived = _sender_recording(monkeypatch)

    started = time.monotonic()
    sender.put([3, 1], "delivered")
    time.sleep(0.1)
    sender.put([2], "delivered")
    sender.put([7], "refunded")
    with arrived:
        assert arrived.wait_for(lambda: len(sent) == 2, timeout=10)

    assert [(ids, event) for ids, event, _at in sent] == [([1, 2, 3], "delivered"), ([7], "refunded")]
    assert min(at for _ids, _event, at in sent) - started >= 0.6  # nothing went out before the gathering ended


def test_the_sender_does_not_gather_past_a_full_task(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    import time

    from kameng.orders import aftercare

    settings.KAMENG_ORDER_AFTERCARE_GATHER_SECONDS = 60
    monkeypatch.setattr(aftercare, "SEND_MAX_IDS", 3)
    sender, sent, arrived = _sender_recording(monkeypatch)

    started = time.monotonic()
    sender.put([1, 2], "delivered")
    sender.put([3, 4], "delivered")
    with arrived:
        assert arrived.wait_for(lambda: len(sent) == 2, timeout=10)

    assert [(ids, event) for ids, event, _at in sent] == [([1, 2, 3], "delivered"), ([4], "delivered")]
    assert max(at for _ids, _event, at in sent) - started < 10


def test_without_gathering_the_sender_publishes_each_commit_as_it_comes(
        monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    settings.KAMENG_ORDER_AFTERCARE_GATHER_SECONDS = 0
    sender, sent, arrived = _sender_recording(monkeypatch)

    sender.put([5], "delivered")
    with arrived:
        assert arrived.wait_for(lambda: len(sent) == 1, timeout=10)
    sender.put([6], "delivered")
    with arrived:
        assert arrived.wait_for(lambda: len(sent) == 2, timeout=10)

    assert [(ids, event) for ids, event, _at in sent] == [([5], "delivered"), ([6], "delivered")]
