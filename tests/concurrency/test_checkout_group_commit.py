"""The group-commit writer on PostgreSQL: batches really form, write what the single path writes, and leave every
checkout they cannot settle to the single path, which answers exactly as it always did."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, OperationalError, connection
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings

from kameng.catalog import selectors as catalog_selectors
from kameng.catalog.models import ProductStatus
from kameng.core.errors import ApplicationError
from kameng.inventory import services as inventory_services
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.services import SoldOutError
from kameng.ledger import services as ledger_services
from kameng.ledger.models import AccountKind, Entry, Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.ledger.services import (
    InsufficientFundsError,
    credit,
    debit,
    journal_post,
    system_account_id,
    wallet_account_id,
)
from kameng.orders import checkout, group_commit
from kameng.orders.group_commit import _Checkout, write_batch, writer_stop
from kameng.orders.models import Order, OrderEvent, OrderStatus
from kameng.orders.services import order_checkout
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SkuFactory, UserFactory, claim_scan_from, fund_wallet, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _group_commit(settings: Settings) -> Iterator[None]:
    requires_postgresql()
    settings.KAMENG_CHECKOUT_GROUP_COMMIT = True
    # The writer alone: the aftercare listeners (eager in tests, a Celery task in production) would run in the
    # writer thread after each batch; the tests of aftercare name their own listener.
    settings.KAMENG_ORDER_AFTERCARE = []
    yield
    writer_stop()


def _checkout(buyer_id: int, sku_id: int, quantity: int = 1, request_id: str | None = None) -> _Checkout:
    return _Checkout(buyer_id=buyer_id, wallet_id=wallet_account_id(user_id=buyer_id), sku_id=sku_id,
                     quantity=quantity, request_id=request_id)


def _handed_together(checkouts: list[_Checkout]) -> None:
    """Hand the checkouts to a fresh, idle writer so that it finds all of them queued at once."""
    writer = group_commit._writer()
    writer.stop()
    with writer._wakeup:
        writer._queue.extend(checkouts[:-1])
    writer.submit(checkouts[-1])


def _funded_buyers(count: int, amount: str = "100.00") -> list[int]:
    buyers = [UserFactory.create() for _ in range(count)]
    for buyer in buyers:
        fund_wallet(buyer, amount)
    return [buyer.pk for buyer in buyers]


def test_concurrent_checkouts_share_transactions() -> None:
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 100)
    buyer_ids = _funded_buyers(40)

    outcomes = run_in_threads(40, lambda i: order_checkout(
        batched=True, buyer_id=buyer_ids[i], sku_id=sku.pk, quantity=2, request_id=f"gc-{i}"))

    assert unexpected(outcomes) == []
    results = [o.value for o in outcomes if o.value is not None]
    assert len(results) == 40
    assert all(result.created and len(result.secrets) == 2 for result in results)
    # One batch writes all its rows with one timestamp: fewer distinct timestamps than orders means batches formed.
    timestamps = set(Order.objects.values_list("created_at", flat=True))
    assert len(timestamps) < 40
    assert Order.objects.filter(status=OrderStatus.DELIVERED).count() == 40
    sold = list(CardKey.objects.filter(status=CardKeyStatus.SOLD).values_list("order_id", flat=True))
    assert len(sold) == 80
    assert sorted(set(sold)) == sorted(Order.objects.values_list("pk", flat=True))
    assert all(wallet_balance(user_id=buyer_id) == Decimal("90.00") for buyer_id in buyer_ids)
    assert ledger_problems() == []


def test_a_lone_checkout_is_written_at_once_without_gathering(settings: Settings) -> None:
    settings.KAMENG_CHECKOUT_GROUP_GATHER_SECONDS = 5.0
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 3)
    buyer_id, = _funded_buyers(1)

    started = time.monotonic()
    result = order_checkout(batched=True, buyer_id=buyer_id, sku_id=sku.pk, quantity=1, request_id="alone")

    assert result.created
    assert time.monotonic() - started < 2.5  # not the 5 s a gathering would take


def test_checkouts_that_come_together_are_gathered_into_one_batch(monkeypatch: pytest.MonkeyPatch,
                                                                  settings: Settings) -> None:
    """The writer is held on a first batch while two checkouts queue behind it; once free it finds two waiting,
    so it gathers (1 s here) and a fourth checkout, sent after the release, joins their batch."""
    settings.KAMENG_CHECKOUT_GROUP_GATHER_SECONDS = 1.0
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 10)
    buyer_ids = _funded_buyers(4)
    release = threading.Event()
    sizes: list[int] = []
    original = group_commit.write_batch

    def recorded(batch: list[_Checkout]) -> None:
        sizes.append(len(batch))
        if len(sizes) == 1:
            release.wait(10)
        original(batch)

    monkeypatch.setattr(group_commit, "write_batch", recorded)
    outcomes: dict[int, Any] = {}

    def buy(index: int) -> None:
        try:
            outcomes[index] = order_checkout(batched=True, buyer_id=buyer_ids[index], sku_id=sku.pk, quantity=1,
                                             request_id=f"together-{index}")
        except BaseException as error:  # reported below
            outcomes[index] = error
        finally:
            connection.close()

    def start(index: int) -> threading.Thread:
        thread = threading.Thread(target=buy, args=(index,))
        thread.start()
        return thread

    threads = [start(0)]
    deadline = time.monotonic() + 10
    while not sizes and time.monotonic() < deadline:  # the writer holds the first batch
        time.sleep(0.01)
    threads += [start(1), start(2)]
    writer = group_commit._writer()
    while len(writer._queue) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    time.sleep(0.3)
    threads.append(start(3))
    for thread in threads:
        thread.join(20)

    assert sizes == [1, 3]
    assert all(getattr(outcomes[index], "created", False) for index in range(4)), outcomes
    assert Order.objects.filter(status=OrderStatus.DELIVERED).count() == 4
    assert ledger_problems() == []


def test_a_lone_checkout_after_a_burst_and_a_pause_is_written_at_once(settings: Settings) -> None:
    """A batch of several makes the writer gather for the next one; once it has waited idle, a checkout that comes
    alone is alone again and is not kept waiting."""
    settings.KAMENG_CHECKOUT_GROUP_GATHER_SECONDS = 5.0
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 10)
    buyer_ids = _funded_buyers(3)
    burst = [_checkout(buyer_ids[index], sku.pk, 1, f"burst-{index}") for index in range(3)]
    _handed_together(burst)  # one batch of three
    assert all(checkout_.done.wait(15) for checkout_ in burst)
    time.sleep(0.2)  # the writer waits idle

    started = time.monotonic()
    result = order_checkout(batched=True, buyer_id=buyer_ids[0], sku_id=sku.pk, quantity=1, request_id="after")

    assert result.created
    assert time.monotonic() - started < 2.5  # not the 5 s a gathering would take
    assert Order.objects.count() == 4


def test_a_full_batch_ends_the_gathering(settings: Settings) -> None:
    settings.KAMENG_CHECKOUT_GROUP_GATHER_SECONDS = 30.0
    settings.KAMENG_CHECKOUT_GROUP_MAX = 3
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 5)
    buyer_ids = _funded_buyers(3)
    checkouts = [_checkout(buyer_ids[index], sku.pk, 1, f"full-{index}") for index in range(3)]

    started = time.monotonic()
    _handed_together(checkouts)  # a full batch

    assert all(checkout_.done.wait(15) for checkout_ in checkouts)
    assert time.monotonic() - started < 15  # no 30 s gathering
    assert all(checkout_.order is not None for checkout_ in checkouts)
    assert len(set(Order.objects.values_list("created_at", flat=True))) == 1  # one batch


def test_two_writers_share_one_wallet_and_one_sku_without_overselling_or_overdrawing(settings: Settings) -> None:
    """KAMENG_CHECKOUT_GROUP_WRITERS=2: batches commit side by side on two connections. Eight buyers each fund
    exactly three orders and ask for five; 30 keys for 40 asked. No wallet pays more than three or goes below zero,
    every key is sold once, and whoever is refused gets the single path's exact answer. (Not exactly 24 delivered:
    a claim skips keys another writer's batch holds, and that batch may roll back — a checkout then hears "sold
    out" while those keys come back, as with two server processes.)"""
    settings.KAMENG_CHECKOUT_GROUP_WRITERS = 2
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 30)
    buyer_ids = _funded_buyers(8, amount="15.00")

    outcomes = run_in_threads(40, lambda i: order_checkout(
        batched=True, buyer_id=buyer_ids[i % 8], sku_id=sku.pk, quantity=1, request_id=f"two-{i}"))

    assert unexpected(outcomes, InsufficientFundsError, SoldOutError) == []
    delivered = [o.value for o in outcomes if o.value is not None]
    assert 0 < len(delivered) <= 24
    for buyer_id in buyer_ids:
        orders = Order.objects.filter(buyer_id=buyer_id, status=OrderStatus.DELIVERED).count()
        assert orders <= 3
        assert wallet_balance(user_id=buyer_id) == Decimal("15.00") - 5 * orders
    sold = list(CardKey.objects.filter(status=CardKeyStatus.SOLD).values_list("order_id", flat=True))
    assert len(sold) == len(set(sold)) == len(delivered)
    assert sorted(sold) == sorted(Order.objects.filter(status=OrderStatus.DELIVERED).values_list("pk", flat=True))
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 30 - len(delivered)
    writers = {thread.name for thread in threading.enumerate() if thread.name.startswith("kameng-checkout-writer")}
    assert writers == {"kameng-checkout-writer-1", "kameng-checkout-writer-2"}
    assert ledger_problems() == []


def test_a_batch_of_one_finding_no_key_is_answered_sold_out_without_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    """The last keys of a flash sale: a batch of one that finds none is an answer (the single path's 409), not a
    failed batch logged with its traceback."""
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 1)
    buyer_ids = _funded_buyers(2)
    order_checkout(batched=True, buyer_id=buyer_ids[0], sku_id=sku.pk, quantity=1, request_id="last-key")
    inventory_services.card_keys_sold_out_forget()  # as another process, which has not seen the SKU run out

    with caplog.at_level("WARNING", logger="kameng.orders.group_commit"), pytest.raises(SoldOutError):
        order_checkout(batched=True, buyer_id=buyer_ids[1], sku_id=sku.pk, quantity=1, request_id="too-late")

    assert [record.getMessage() for record in caplog.records] == []
    assert Order.objects.filter(buyer_id=buyer_ids[1]).count() == 0
    assert wallet_balance(user_id=buyer_ids[1]) == Decimal("100.00")
    assert ledger_problems() == []


def test_a_batch_writes_what_the_single_path_writes(settings: Settings) -> None:
    sku = SkuFactory.create(price=Decimal("7.25"))
    stock_sku(sku, 10)
    grouped_buyer, single_buyer = _funded_buyers(2, "50.00")

    grouped = order_checkout(batched=True, buyer_id=grouped_buyer, sku_id=sku.pk, quantity=2, request_id="same-shape")
    settings.KAMENG_CHECKOUT_GROUP_COMMIT = False
    single = order_checkout(batched=True, buyer_id=single_buyer, sku_id=sku.pk, quantity=2, request_id="same-shape")

    def shape(order: Order) -> dict[str, object]:
        stored = Order.objects.get(pk=order.pk)
        journal = Journal.objects.get(kind=JournalKind.ORDER_PAYMENT, reference=stored.number)
        return {
            "order": (stored.status, stored.title, stored.quantity, stored.unit_price, stored.total_amount,
                      stored.request_id, stored.expires_at, stored.paid_at == stored.delivered_at == stored.created_at,
                      stored.refunded_amount),
            "events": list(OrderEvent.objects.filter(order=stored).order_by("id").values_list(
                "from_status", "to_status", "kind", "params")),
            "journal": (journal.memo, sorted(
                (entry.side, entry.amount) for entry in Entry.objects.filter(journal=journal))),
            "keys": CardKey.objects.filter(order=stored, status=CardKeyStatus.SOLD, sold_at__isnull=False).count(),
        }

    assert shape(grouped.order) == shape(single.order)
    assert grouped.order.pk != single.order.pk
    assert wallet_balance(user_id=grouped_buyer) == wallet_balance(user_id=single_buyer) == Decimal("35.50")
    assert ledger_problems() == []


def test_what_a_batch_cannot_settle_goes_to_the_single_path_with_its_own_answer() -> None:
    hot = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(hot, 10)
    scarce = SkuFactory.create(price=Decimal("1.00"))
    stock_sku(scarce, 1)
    shelved = SkuFactory.create(price=Decimal("1.00"))
    stock_sku(shelved, 5)
    shelved.product.status = ProductStatus.OFF_SHELF
    shelved.product.save()
    rich_a, rich_b, poor, replayer = _funded_buyers(4, "100.00")
    first = order_checkout(batched=True, buyer_id=replayer, sku_id=hot.pk, quantity=1, request_id="again")
    # `poor` keeps ¥4: short of the ¥10 it will try to spend.
    journal_post(kind=JournalKind.ORDER_PAYMENT, reference="drain-poor",
                 legs=[debit(wallet_account_id(user_id=poor), Decimal("96.00")),
                       credit(system_account_id(kind=AccountKind.PLATFORM_REVENUE), Decimal("96.00"))])
    batch = [
        _checkout(rich_a, hot.pk, 2, "a"),                 # fine
        _checkout(poor, hot.pk, 1, "too-much"),            # ¥4 in the wallet, ¥10 to pay
        _checkout(replayer, hot.pk, 1, "again"),           # replay of `first`
        _checkout(rich_b, scarce.pk, 2, "short"),          # 1 key left, 2 wanted
        _checkout(rich_b, shelved.pk, 1, "shelved"),       # product off the shelf
        _checkout(rich_b, hot.pk, 10_000, "huge"),         # quantity out of bounds
    ]

    write_batch(batch)

    assert all(checkout.done.is_set() for checkout in batch)
    assert all(checkout.error is None for checkout in batch)
    settled = {checkout.request_id: checkout.order for checkout in batch}
    assert settled["a"] is not None
    assert settled["a"].status == OrderStatus.DELIVERED
    assert len(batch[0].ciphertexts) == 2
    for left in ("too-much", "again", "short", "shelved", "huge"):
        assert settled[left] is None, left
    # Nothing of the culprits was written by the batch.
    assert not Order.objects.filter(request_id__in=["too-much", "short", "shelved", "huge"]).exists()
    assert Order.objects.filter(request_id="again").count() == 1

    # The single path gives each of them its exact answer.
    with pytest.raises(InsufficientFundsError):
        order_checkout(batched=True, buyer_id=poor, sku_id=hot.pk, quantity=1, request_id="too-much")
    replay = order_checkout(batched=True, buyer_id=replayer, sku_id=hot.pk, quantity=1, request_id="again")
    assert not replay.created
    assert replay.order.number == first.order.number
    with pytest.raises(SoldOutError):
        order_checkout(batched=True, buyer_id=rich_b, sku_id=scarce.pk, quantity=2, request_id="short")
    assert wallet_balance(user_id=rich_a) == Decimal("80.00")
    assert wallet_balance(user_id=rich_b) == Decimal("100.00")
    assert wallet_balance(user_id=poor) == Decimal("4.00")
    assert ledger_problems() == []


def test_an_id_outside_bigint_does_not_break_the_batch_of_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    sku = SkuFactory.create(price=Decimal("2.00"))
    stock_sku(sku, 5)
    buyer, other = _funded_buyers(2, "10.00")
    rollbacks: list[str] = []
    monkeypatch.setattr(group_commit.logger, "warning", lambda message, *args, **kwargs: rollbacks.append(message))
    batch = [_checkout(buyer, sku.pk, 1, "fine"), _checkout(other, 2**63, 1, "bad-id"),
             _checkout(other, sku.pk, 2, "fine-too")]

    write_batch(batch)

    assert rollbacks == []  # the batch was not rolled back and sent to the single path as a whole
    assert all(checkout.done.is_set() and checkout.error is None for checkout in batch)
    assert [checkout.order is not None for checkout in batch] == [True, False, True]
    assert Order.objects.filter(status=OrderStatus.DELIVERED).count() == 2
    with pytest.raises(ApplicationError) as error:  # the single path's answer for the one left over
        order_checkout(batched=True, buyer_id=other, sku_id=2**63, quantity=1, request_id="bad-id")
    assert (error.value.status_code, error.value.code) == (404, "sku_not_found")
    assert wallet_balance(user_id=buyer) == Decimal("8.00")
    assert wallet_balance(user_id=other) == Decimal("6.00")


def test_a_request_id_reused_for_another_order_is_a_conflict_through_the_writer() -> None:
    sku = SkuFactory.create(price=Decimal("2.00"))
    other = SkuFactory.create(price=Decimal("2.00"))
    stock_sku(sku, 10)
    stock_sku(other, 10)
    buyer, fresh = _funded_buyers(2, "20.00")
    first = order_checkout(batched=True, buyer_id=buyer, sku_id=sku.pk, quantity=1, request_id="once")
    # In one batch: the same request again, the id reused for another quantity and another SKU, and, twice within
    # the batch itself, a new id whose second use asks for another quantity.
    batch = [_checkout(buyer, sku.pk, 1, "once"), _checkout(buyer, sku.pk, 2, "once"),
             _checkout(buyer, other.pk, 1, "once"), _checkout(fresh, sku.pk, 1, "twice"),
             _checkout(fresh, sku.pk, 3, "twice")]

    write_batch(batch)

    assert [checkout.order is not None for checkout in batch] == [False, False, False, True, False]
    assert all(checkout.error is None for checkout in batch)
    replay = order_checkout(batched=True, buyer_id=buyer, sku_id=sku.pk, quantity=1, request_id="once")
    assert (replay.created, replay.order.number) == (False, first.order.number)
    for buyer_id, sku_id, quantity, request_id in ((buyer, sku.pk, 2, "once"), (buyer, other.pk, 1, "once"),
                                                   (fresh, sku.pk, 3, "twice")):
        with pytest.raises(ApplicationError) as error:
            order_checkout(batched=True, buyer_id=buyer_id, sku_id=sku_id, quantity=quantity, request_id=request_id)
        assert (error.value.status_code, error.value.code) == (409, "request_id_reused")
    assert Order.objects.count() == 2
    assert wallet_balance(user_id=buyer) == Decimal("18.00")
    assert wallet_balance(user_id=fresh) == Decimal("18.00")


def test_a_database_error_inside_the_batch_writes_nothing_and_each_runs_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sku = SkuFactory.create(price=Decimal("3.00"))
    stock_sku(sku, 5)
    buyer_ids = _funded_buyers(3, "10.00")

    # The journals' statement fails at the server, after the orders and the claim went through in the same
    # transaction (the message, then its two-wait retry, then nothing more: each runs alone).
    monkeypatch.setattr(ledger_services, "_JOURNALS_POST_SQL", "SELECT 1 / 0, %(now)s")
    batch = [_checkout(buyer_id, sku.pk, 1, f"err-{buyer_id}") for buyer_id in buyer_ids]

    write_batch(batch)

    assert all(checkout.done.is_set() and checkout.order is None and checkout.error is None for checkout in batch)
    assert Order.objects.count() == 0
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 5
    assert all(wallet_balance(user_id=buyer_id) == Decimal("10.00") for buyer_id in buyer_ids)
    assert connection.is_usable()
    assert ledger_problems() == []


def test_the_api_checkout_goes_through_the_writer_and_replays_cleanly() -> None:
    sku = SkuFactory.create(price=Decimal("8.00"))
    secrets = stock_sku(sku, 3)
    buyer = UserFactory.create()
    fund_wallet(buyer, "40.00")  # enough for the refused order too: it fails on stock only
    client = Client()
    client.force_login(buyer)
    body = json.dumps({"sku_id": sku.pk, "quantity": 2, "request_id": "api-gc"})

    created = client.post("/api/v1/shop/orders", body, content_type="application/json")
    replayed = client.post("/api/v1/shop/orders", body, content_type="application/json")
    refused = client.post("/api/v1/shop/orders", json.dumps({"sku_id": sku.pk, "quantity": 2}),
                          content_type="application/json")

    assert created.status_code == 201, created.content
    assert replayed.status_code == 200
    assert created.json()["secrets"] == replayed.json()["secrets"]
    assert len(set(created.json()["secrets"])) == 2
    assert set(created.json()["secrets"]) <= set(secrets)
    assert refused.status_code == 409
    assert refused.json()["code"] == "sold_out"
    assert Order.objects.count() == 1
    assert wallet_balance(user_id=buyer.pk) == Decimal("24.00")
    assert ledger_problems() == []


def test_a_batch_costs_the_same_statements_whatever_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    sku = SkuFactory.create(price=Decimal("1.00"))
    stock_sku(sku, 40)
    claim_scan_from(monkeypatch)  # never a wrap (a wrap adds one claim statement, whatever the size)
    _held_longer(monkeypatch)
    buyer_ids = _funded_buyers(17, "10.00")
    write_batch([_checkout(buyer_id, sku.pk) for buyer_id in buyer_ids[:2]])  # caches: accounts, range, SKU, ids
    counts = []
    for size, first in ((3, 2), (12, 5)):
        batch = [_checkout(buyer_id, sku.pk) for buyer_id in buyer_ids[first:first + size]]
        with CaptureQueriesContext(connection) as captured:
            write_batch(batch)
        assert all(checkout.order is not None for checkout in batch)
        counts.append(len(captured.captured_queries))
    # One message: BEGIN, orders with their events, claim, journals with their entries and the wallets locked and
    # moved, the guard, COMMIT — a constant number of statements, not a number per order, in one round trip
    # (tests/concurrency/test_checkout_round_trips.py).
    assert counts == [1, 1]
    assert Order.objects.count() == 17
    assert ledger_problems() == []


def _held_longer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SKU read and the order ids taken ahead stay usable for the whole test (a slow machine must not make a
    count differ)."""
    monkeypatch.setattr(catalog_selectors, "SKUS_FOR_SALE_HELD_SECONDS", 600.0)
    monkeypatch.setattr(checkout._OrderIds, "FRESH_SECONDS", 600.0)


def _refuse_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """The message's guard fails its transaction: the batch is written again, its answers read before its own
    COMMIT (`drafts_write_at_once`'s second way)."""
    monkeypatch.setattr(checkout, "_AT_ONCE_GUARD_SQL", "SELECT 1 / 0, %(ids)s, %(orders)s, %(keys)s")


def test_a_failed_commit_is_answered_as_an_error_not_written_again(monkeypatch: pytest.MonkeyPatch) -> None:
    sku = SkuFactory.create(price=Decimal("2.00"))
    stock_sku(sku, 5)
    buyer_ids = _funded_buyers(2, "10.00")
    batch = [_checkout(buyer_id, sku.pk, 1, f"commit-{buyer_id}") for buyer_id in buyer_ids]
    write_batch([_checkout(buyer_ids[0], sku.pk, 1, "warm")])  # account ids cached: the batch below is all SQL

    def lost_connection() -> None:
        raise OperationalError("server closed the connection unexpectedly")

    _refuse_the_guard(monkeypatch)  # the second way: its own COMMIT fails
    monkeypatch.setattr(connection, "commit", lost_connection)
    write_batch(batch)
    monkeypatch.undo()

    # Whether a COMMIT that failed took effect cannot be known: each buyer gets the error (and can replay with the
    # same request id), none of them is written a second time through the single path.
    assert all(checkout.done.is_set() and checkout.order is None for checkout in batch)
    assert all(isinstance(checkout.error, OperationalError) for checkout in batch)
    assert not Order.objects.filter(request_id__startswith="commit-").exists()
    assert ledger_problems() == []


def test_a_checkout_that_waits_too_long_gets_a_503_and_the_writer_carries_on(
        monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    sku = SkuFactory.create(price=Decimal("2.00"))
    stock_sku(sku, 5)
    buyer_id, = _funded_buyers(1, "10.00")
    settings.KAMENG_CHECKOUT_GROUP_WAIT_SECONDS = 0.2
    release = threading.Event()
    original = group_commit.write_batch

    def slow_write_batch(batch: list[_Checkout]) -> None:
        release.wait(5)
        original(batch)

    monkeypatch.setattr(group_commit, "write_batch", slow_write_batch)
    # The writer takes this one and is stuck in it: the answer cannot say whether it will land.
    with pytest.raises(ApplicationError) as taken:
        order_checkout(batched=True, buyer_id=buyer_id, sku_id=sku.pk, quantity=1, request_id="slow")
    # This one is still queued behind it when its wait ends: withdrawn, so it will never be written.
    with pytest.raises(ApplicationError) as queued:
        order_checkout(batched=True, buyer_id=buyer_id, sku_id=sku.pk, quantity=1, request_id="queued")
    assert (taken.value.status_code, taken.value.code) == (503, "checkout_timeout")
    assert (queued.value.status_code, queued.value.code) == (503, "checkout_busy")
    release.set()
    writer_stop()

    replay = order_checkout(batched=True, buyer_id=buyer_id, sku_id=sku.pk, quantity=1, request_id="slow")
    assert not replay.created
    assert len(replay.secrets) == 1
    assert list(Order.objects.values_list("request_id", flat=True)) == ["slow"]
    assert wallet_balance(user_id=buyer_id) == Decimal("8.00")
    assert ledger_problems() == []


def test_a_constraint_failing_at_commit_rolls_back_and_each_runs_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    sku = SkuFactory.create(price=Decimal("2.00"))
    stock_sku(sku, 5)
    buyer_ids = _funded_buyers(2, "10.00")
    write_batch([_checkout(buyer_ids[0], sku.pk, 1, "warm")])
    batch = [_checkout(buyer_id, sku.pk, 1, f"deferred-{buyer_id}") for buyer_id in buyer_ids]

    def deferred_foreign_key_violation() -> None:
        raise IntegrityError("insert or update on table violates foreign key constraint")

    _refuse_the_guard(monkeypatch)  # the second way: its own COMMIT fails
    monkeypatch.setattr(connection, "commit", deferred_foreign_key_violation)
    write_batch(batch)
    monkeypatch.undo()

    # PostgreSQL rolls a transaction back when a deferred constraint fails at COMMIT: nothing landed, so each
    # checkout can safely run alone (where the failing one gets its own error).
    assert all(checkout.done.is_set() and checkout.order is None and checkout.error is None for checkout in batch)
    assert not Order.objects.filter(request_id__startswith="deferred-").exists()
    assert ledger_problems() == []


def test_a_connection_lost_with_the_message_is_answered_as_an_error_not_written_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sku = SkuFactory.create(price=Decimal("2.00"))
    stock_sku(sku, 5)
    buyer_ids = _funded_buyers(2, "10.00")
    batch = [_checkout(buyer_id, sku.pk, 1, f"lost-{buyer_id}") for buyer_id in buyer_ids]

    def lost(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.startswith("BEGIN"):  # the message carrying the batch's COMMIT: its outcome cannot be known
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(lost):
        write_batch(batch)

    assert all(checkout.done.is_set() and checkout.order is None for checkout in batch)
    assert all(isinstance(checkout.error, OperationalError) for checkout in batch)
    assert not Order.objects.filter(request_id__startswith="lost-").exists()
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 5
    assert ledger_problems() == []


def test_a_committed_batch_whose_answers_cannot_be_read_is_answered_as_an_error_not_written_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sku = SkuFactory.create(price=Decimal("2.00"))
    stock_sku(sku, 5)
    buyer_ids = _funded_buyers(2, "10.00")
    batch = [_checkout(buyer_id, sku.pk, 1) for buyer_id in buyer_ids]  # no request id: a rerun would write twice
    claim_scan_from(monkeypatch)  # the message commits it (a wrap would send it the second way)

    def unreadable(*_args: object) -> list[object]:
        raise RuntimeError("answers lost after the COMMIT")

    monkeypatch.setattr(checkout, "_orders_written", unreadable)
    write_batch(batch)
    monkeypatch.undo()

    assert all(checkout.done.is_set() and checkout.order is None for checkout in batch)
    assert all(isinstance(checkout.error, RuntimeError) for checkout in batch)
    assert Order.objects.count() == 2  # the message committed them, once
    assert CardKey.objects.filter(status=CardKeyStatus.SOLD).count() == 2
    assert all(wallet_balance(user_id=buyer_id) == Decimal("8.00") for buyer_id in buyer_ids)
    assert ledger_problems() == []


def test_a_constraint_failing_inside_the_message_rolls_back_and_each_runs_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sku = SkuFactory.create(price=Decimal("2.00"))
    stock_sku(sku, 5)
    buyer_ids = _funded_buyers(2, "10.00")
    batch = [_checkout(buyer_id, sku.pk, 1, f"violated-{buyer_id}") for buyer_id in buyer_ids]
    # A real constraint violation at the server, after the orders, claims and journals of the same transaction.
    monkeypatch.setattr(checkout, "_AT_ONCE_GUARD_SQL",
                        "INSERT INTO orders_order (id, number) SELECT NULL, %(orders)s::text WHERE %(ids)s IS NOT NULL "
                        "AND %(keys)s > 0")

    write_batch(batch)

    assert all(checkout.done.is_set() and checkout.order is None and checkout.error is None for checkout in batch)
    assert not Order.objects.filter(request_id__startswith="violated-").exists()
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 5
    assert all(wallet_balance(user_id=buyer_id) == Decimal("10.00") for buyer_id in buyer_ids)
    assert ledger_problems() == []


@pytest.mark.parametrize("cause", ["replay", "wrap", "short wallet"])
def test_what_the_guard_refuses_is_written_exactly_by_the_second_way(
        cause: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sku = SkuFactory.create(price=Decimal("2.00"))
    keys = stock_sku(sku, 6)
    buyer_ids = _funded_buyers(2, "10.00") + _funded_buyers(1, "1.00" if cause == "short wallet" else "10.00")
    _held_longer(monkeypatch)
    claim_scan_from(monkeypatch, last=cause == "wrap")  # "wrap": the claim must wrap, which the guard refuses
    if cause == "replay":
        write_batch([_checkout(buyer_ids[0], sku.pk, 1, "again"), _checkout(buyer_ids[1], sku.pk, 1, "first")])
    messages: list[str] = []

    def note(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        messages.append(sql[:5])
        return execute(sql, params, many, context)

    batch = [_checkout(buyer_ids[0], sku.pk, 1, "again"), _checkout(buyer_ids[1], sku.pk, 2, "second"),
             _checkout(buyer_ids[2], sku.pk, 1, "third")]
    with connection.execute_wrapper(note):
        write_batch(batch)

    # The guarded message, refused; then the second way (and, without the short wallet's order, a new message).
    assert messages.count("BEGIN") == (3 if cause == "short wallet" else 2)
    replayed, second, third = batch
    assert second.order is not None
    assert len(second.ciphertexts) == 2
    if cause == "short wallet":  # ¥1 for a ¥2 key: left to the single path, which refuses it
        assert third.done.is_set()
        assert (third.order, third.error) == (None, None)
        assert wallet_balance(user_id=buyer_ids[2]) == Decimal("1.00")
    else:
        assert third.order is not None
        assert len(third.ciphertexts) == 1
    if cause == "replay":  # the first order of "again" stands; the single path answers the replay with it
        assert replayed.done.is_set()
        assert (replayed.order, replayed.error) == (None, None)
        assert Order.objects.filter(request_id="again").count() == 1
    else:
        assert replayed.order is not None
    sold = CardKey.objects.filter(status=CardKeyStatus.SOLD)
    assert sold.count() == Order.objects.aggregate(total=Sum("quantity"))["total"]
    assert len(set(sold.values_list("order_id", flat=True))) == Order.objects.count()
    assert len(keys) == 6
    assert ledger_problems() == []


def test_a_price_rule_in_settings_changes_the_batch_price(settings: Settings) -> None:
    settings.KAMENG_PRICE_RULES = ["tests.catalog.price_rules.ten_percent_off"]
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 10)
    buyer_ids = _funded_buyers(3, "30.00")
    batch = [_checkout(buyer_id, sku.pk, 2, f"priced-{buyer_id}") for buyer_id in buyer_ids]

    write_batch(batch)

    assert all(checkout.order is not None for checkout in batch)
    orders = list(Order.objects.order_by("pk"))
    assert [(order.unit_price, order.total_amount) for order in orders] == [(Decimal("9.00"), Decimal("18.00"))] * 3
    assert all(order.price_lines == [{"code": "member", "label": "会员九折", "amount": "-1.00"}] for order in orders)
    assert all(wallet_balance(user_id=buyer_id) == Decimal("12.00") for buyer_id in buyer_ids)
    assert ledger_problems() == []


HEARD_BATCHES: list[list[int]] = []


def _aftercare_recorder(*, order_ids: list[int], event: str) -> None:
    assert event == "delivered"
    HEARD_BATCHES.append(list(order_ids))


def test_aftercare_hears_each_batch_once_with_all_its_delivered_orders(settings: Settings) -> None:
    settings.KAMENG_ORDER_AFTERCARE = [f"{__name__}._aftercare_recorder"]
    HEARD_BATCHES.clear()
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 40)
    buyer_ids = _funded_buyers(30)

    outcomes = run_in_threads(30, lambda i: order_checkout(
        batched=True, buyer_id=buyer_ids[i], sku_id=sku.pk, quantity=1, request_id=f"ac-{i}"))

    assert unexpected(outcomes) == []
    heard = [order_id for batch in HEARD_BATCHES for order_id in batch]
    assert sorted(heard) == sorted(Order.objects.values_list("pk", flat=True))
    assert len(heard) == 30
    # Batches formed, and each was told as one registration rather than order by order.
    assert len(HEARD_BATCHES) < 30


def test_a_batch_that_finds_no_key_answers_each_checkout_sold_out_without_the_single_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The flash sale's losers once the keys are gone: the batch proves that nothing is sellable, nothing can be
    taken over from unpaid orders and no upstream takes them, and answers each "sold out" itself (the single
    path's answer), remembering the SKU as sold out — not one transaction per loser."""
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 1)
    buyer_ids = _funded_buyers(4)
    order_checkout(batched=True, buyer_id=buyer_ids[0], sku_id=sku.pk, quantity=1, request_id="winner")
    inventory_services.card_keys_sold_out_forget()  # as another process, which has not seen the SKU run out

    def single_path(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a loser went to the single path")

    monkeypatch.setattr(checkout, "_claim_one", single_path)
    batch = [_checkout(buyer_id, sku.pk, quantity, f"late-{index}")
             for index, (buyer_id, quantity) in enumerate(zip(buyer_ids[1:], (1, 1, 2), strict=True))]
    write_batch(batch)

    assert all(checkout.done.is_set() and checkout.order is None for checkout in batch)
    errors = [checkout.error for checkout in batch]
    assert all(isinstance(error, SoldOutError) for error in errors)
    assert {(error.code, error.message, json.dumps(error.extra)) for error in errors  # type: ignore[union-attr]
            } == {("sold_out", "已售罄", '{"available": 0}')}
    assert len({id(error) for error in errors}) == 3  # one each: raised in their own threads
    assert inventory_services.card_keys_known_sold_out(sku_id=sku.pk)
    assert not Order.objects.filter(request_id__startswith="late-").exists()
    assert [wallet_balance(user_id=buyer_id) for buyer_id in buyer_ids[1:]] == [Decimal("100.00")] * 3
    assert ledger_problems() == []


@pytest.mark.parametrize("left", ["key", "reservation", "upstream"])
def test_a_batch_that_finds_no_key_leaves_its_checkouts_to_the_single_path_when_some_may_be_served(
        left: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key counted as available (held by another transaction, say), an unpaid order near its deadline to take
    keys over from, or an upstream that takes the order: the single path decides, checkout by checkout."""
    sku = SkuFactory.create(price=Decimal("5.00"))
    buyer_ids = _funded_buyers(2)
    if left == "key":
        monkeypatch.setattr(checkout, "card_keys_nothing_sellable", lambda **_kwargs: False)
    elif left == "reservation":
        monkeypatch.setattr(checkout, "reservations_could_take_over", lambda **_kwargs: True)
    else:
        monkeypatch.setattr(checkout, "card_key_upstream_takes", lambda order: True)
    batch = [_checkout(buyer_id, sku.pk, 1, f"maybe-{index}") for index, buyer_id in enumerate(buyer_ids)]

    write_batch(batch)

    assert all(checkout.done.is_set() and checkout.order is None and checkout.error is None for checkout in batch)
    assert not inventory_services.card_keys_known_sold_out(sku_id=sku.pk)
    assert not Order.objects.filter(request_id__startswith="maybe-").exists()


def test_two_prices_of_one_sku_in_a_batch_leave_the_short_one_to_the_single_path(settings: Settings) -> None:
    """The batch's other group of the SKU took its keys in the same transaction, which rolls back: what the short
    group saw is not the stock, so it proves nothing."""
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 1)
    buyer_ids = _funded_buyers(2)
    prices = {buyer_ids[0]: Decimal("5.00"), buyer_ids[1]: Decimal("4.00")}
    original = group_commit.sku_price

    def priced(*, sku: object, buyer_id: int, **kwargs: object) -> object:
        quote = original(sku=sku, buyer_id=buyer_id, **kwargs)  # type: ignore[arg-type]
        return quote if prices[buyer_id] == quote.unit_price else replace(
            quote, unit_price=prices[buyer_id], total=prices[buyer_id] * quote.quantity)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(group_commit, "sku_price", priced)
        batch = [_checkout(buyer_id, sku.pk, 1, f"price-{index}") for index, buyer_id in enumerate(buyer_ids)]
        write_batch(batch)

    assert all(checkout.error is None for checkout in batch)
    assert not inventory_services.card_keys_known_sold_out(sku_id=sku.pk)
