"""The checkout writes, once: drafting an order (its price, timeline and journal) and writing drafts.

Both checkout paths go through here: the single path (`services.order_checkout`) writes a batch of one, the
group-commit writer (`group_commit.py`) a batch of many. On PostgreSQL a batch is written set-based, a statement
per table or two whatever its size (the orders with their events, their key claim, their journals), and what
follows the orders' INSERT is sent in one pipeline (`kameng.core.sql.statements_pipelined`): one wait for all of
it; on other backends the ORM writes the same rows one by one. Either way the rows come from the same drafts, so
the two paths cannot drift.

A draft is complete before it is written: every column of the order is set from the SKU's `SkuForSale` and its
`PriceQuote`, so marking the instance as written (its id and timestamps filled in) leaves nothing that reads as a
default. How an order is fulfilled depends on its product's delivery kind: card keys are claimed with the order
(sold when paid, reserved when not); anything else is paid into the ledger's orders-in-progress account and
fulfilled after commit by `kameng.orders.fulfilment`. A card-key order that finds no key while an upstream supplier
can sell them is not refused: it is redrafted as one fulfilled later (kameng.orders.upstream).

Points (积分) used on an order are debited in the same transaction, as a points journal of their own (a journal is
in one unit) next to the money journal. Only the single path writes such orders (the group-commit batch never
sees points), and only paid ones: a checkout from the wallet, or an exchange in the points shop, which is paid
wholly in points (no money journal at all: its cash total is ¥0.00 and ledger legs are positive).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction

from kameng.catalog.models import DeliveryKind
from kameng.catalog.pricing import BULK_SALES_CHANNELS, PriceQuote
from kameng.catalog.selectors import SkuForSale, topup_form_for_sku
from kameng.catalog.topup_forms import DEFAULT_TOPUP_FORM, topup_input_clean, topup_target_dumps
from kameng.core.errors import ApplicationError
from kameng.core.fields import EncryptedTextField
from kameng.core.ids import public_number
from kameng.core.money import ZERO
from kameng.core.sql import OneMessage, json_rows, statements_pipelined
from kameng.inventory.services import (
    ClaimShortError,
    SoldOutError,
    card_keys_claim,
    card_keys_claim_many_send,
    card_keys_nothing_sellable,
    card_keys_sold_out_note,
)
from kameng.ledger import recipes
from kameng.ledger.models import JournalKind
from kameng.ledger.services import (
    JournalDraft,
    journal_draft_post,
    journal_post_many_send,
    wallet_account_id,
)
from kameng.orders.aftercare import AftercareEvent, order_aftercare
from kameng.orders.events import KIND_ENTERING
from kameng.orders.models import ORDER_TOTAL_MAX, Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.reservations import reservations_could_take_over, reservations_take_over
from kameng.orders.state import can_transition
from kameng.orders.upstream import card_key_upstream_takes

logger = logging.getLogger(__name__)

# The delivery kinds a checkout accepts. Direct top-ups are fulfilled later, like manual orders (their money held
# until the supplier's answer): their fulfiller comes from the suppliers (settings.KAMENG_FULFILLERS).
PURCHASABLE_KINDS = frozenset({DeliveryKind.CARD_KEY, DeliveryKind.MANUAL, DeliveryKind.DIRECT_TOPUP})

# (from_status, to_status, kind) of each event of a new order, in order; none of them has params.
Timeline = tuple[tuple[str, str, str], ...]


@dataclass(eq=False)
class CheckoutDraft:
    """One order to write, with what goes with it."""

    order: Order
    timeline: Timeline
    journal: JournalDraft | None  # the payment, when paid from the wallet
    keys: int  # card keys to claim with the order (0: fulfilled later)
    sell: bool  # the claimed keys are sold (paid) rather than reserved (waiting for payment)
    points_journal: JournalDraft | None = None  # the points used on the order (single path only)

    @property
    def is_fulfilled_later(self) -> bool:
        return self.sell and self.keys == 0


class StockShortError(Exception):
    """A batch's claim for one SKU found too few keys: the drafts of that SKU go to the single path — or, when
    `sold_out` (the batch took no key of the SKU and `checkout_sold_out_proven` held), each is answered "sold out"
    without it."""

    def __init__(self, drafts: list[CheckoutDraft], *, sold_out: bool = False) -> None:
        super().__init__()
        self.drafts = drafts
        self.sold_out = sold_out


def checkout_topup_target(sku: SkuForSale, target: Mapping[str, str] | None) -> str | None:
    """The text a direct top-up order stores (encrypted) for the buyer's cleaned input; refuses a direct top-up
    without one (naming the form's first field to fill in) and any other delivery kind with one."""
    if sku.delivery_kind != DeliveryKind.DIRECT_TOPUP:
        if target:
            raise ApplicationError("该商品不需要填写充值信息", code="buyer_input_unexpected")
        return None
    if not target:
        found = topup_form_for_sku(sku_id=sku.sku_id)
        topup_input_clean(form=found[1] if found else DEFAULT_TOPUP_FORM, data={})  # raises "请填写…"
        raise ApplicationError("请填写充值信息", code="topup_input_required")
    return topup_target_dumps(target)


def checkout_quantity_upper(sku: SkuForSale, sales_channel: str) -> int:
    """The most units one order may take: the product's own bound capped by KAMENG_MAX_ORDER_QUANTITY, except on
    a reseller's bulk channels (batch purchase, the Open API), where KAMENG_BATCH_PURCHASE_MAX alone bounds it (the
    product's max_quantity is a storefront limit per order, not a bound on resellers buying stock)."""
    if sales_channel in BULK_SALES_CHANNELS:
        return int(settings.KAMENG_BATCH_PURCHASE_MAX)
    return min(sku.max_quantity, settings.KAMENG_MAX_ORDER_QUANTITY)


def checkout_validate(sku: SkuForSale, quantity: int, quote: PriceQuote, *, sales_channel: str = "") -> None:
    """Raise the buyer-facing error when this SKU cannot be checked out in this quantity at this price."""
    if sku.delivery_kind not in PURCHASABLE_KINDS:
        raise ApplicationError("该商品（%(kind)s）暂不支持在线购买，请联系客服", code="delivery_kind_unsupported",
                               params={"kind": DeliveryKind(sku.delivery_kind).label})
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise ApplicationError("购买数量必须是整数", code="invalid_quantity")
    upper = checkout_quantity_upper(sku, sales_channel)
    if quantity < sku.min_quantity or quantity > upper:
        raise ApplicationError("购买数量需在 %(min)s–%(max)s 之间", code="invalid_quantity",
                               extra={"min": sku.min_quantity, "max": upper},
                               params={"min": sku.min_quantity, "max": upper})
    if quote.total > ORDER_TOTAL_MAX:
        most = int(ORDER_TOTAL_MAX // quote.unit_price)
        raise ApplicationError("订单金额不能超过 ¥%(amount)s，该规格每单最多 %(max)s 件", code="order_total_too_large",
                               extra={"max": most}, params={"amount": ORDER_TOTAL_MAX, "max": most})


@functools.cache
def checkout_timeline(*, is_paid: bool, is_delivered: bool, paid_kind: str = OrderEventKind.WALLET_PAID) -> Timeline:
    """The events of a new order: created, then paid (from the wallet, or in points: `paid_kind`), then delivered
    (card keys at once).

    Checked against the transition table once per shape, not once per order.
    """
    steps = [OrderStatus.PENDING_PAYMENT]
    if is_paid:
        steps.append(OrderStatus.PAID)
    if is_delivered:
        steps.append(OrderStatus.DELIVERED)
    timeline = [("", str(steps[0]), str(OrderEventKind.CREATED))]
    for from_status, to_status in itertools.pairwise(steps):
        if not can_transition(from_status, to_status):
            raise ApplicationError(f"illegal checkout timeline {from_status} → {to_status}", code="illegal_transition")
        kind = paid_kind if to_status == OrderStatus.PAID else KIND_ENTERING[to_status]
        timeline.append((str(from_status), str(to_status), str(kind)))
    return tuple(timeline)


def order_payment_memo(order: Order) -> str:
    return f"购买 {order.title} × {order.quantity}"


def checkout_draft(*, sku: SkuForSale, quote: PriceQuote, buyer_id: int, request_id: str | None,
                   wallet_id: int | None, client_ip: str, now: datetime,
                   points_exchange: bool = False, topup_target: str | None = None,
                   sales_channel: str = "storefront") -> CheckoutDraft:
    """The order to write and what goes with it; `wallet_id` pays it from that wallet in the same transaction.
    The quote's points are debited with it; `points_exchange` marks an order paid wholly in points (the points
    shop: card keys only, a cash total of ¥0.00). `topup_target` is a direct top-up's input, as stored."""
    is_paid = wallet_id is not None or points_exchange
    is_card_key = sku.delivery_kind == DeliveryKind.CARD_KEY
    if quote.points_redeemed and not is_paid:
        raise ApplicationError("使用积分抵扣时须用余额支付", code="points_need_wallet")
    if points_exchange and (not is_card_key or quote.total != ZERO or not quote.points_redeemed):
        raise ApplicationError("积分兑换仅支持自动发货的卡密商品", code="points_exchange_unsupported")
    is_delivered = is_paid and is_card_key
    timeline = checkout_timeline(
        is_paid=is_paid, is_delivered=is_delivered,
        paid_kind=OrderEventKind.POINTS_PAID if points_exchange else OrderEventKind.WALLET_PAID)
    order = Order(
        number=public_number("K"), buyer_id=buyer_id, sku_id=sku.sku_id, title=sku.title, quantity=quote.quantity,
        unit_price=quote.unit_price, total_amount=quote.total, refunded_amount=ZERO, price_lines=quote.lines_json(),
        points_redeemed=quote.points_redeemed, points_offset=quote.points_offset,
        client_ip=client_ip or None, delivery_note="", topup_target=topup_target, status=timeline[-1][1],
        request_id=request_id, sales_channel=sales_channel,
        created_at=now, updated_at=now, paid_at=now if is_paid else None,
        delivered_at=now if is_delivered else None,
        expires_at=None if is_paid else now + timedelta(minutes=settings.KAMENG_ORDER_PAYMENT_MINUTES),
    )
    journal = None
    if wallet_id is not None:
        recipe = recipes.order_payment if is_card_key else recipes.order_payment_into_hold
        journal = recipe(order_number=order.number, memo=order_payment_memo(order), wallet_id=wallet_id,
                         amount=order.total_amount)
    points_journal = None
    if quote.points_redeemed:
        points_journal = recipes.points_redeemed(
            reference=order.number, memo=order_payment_memo(order), user_id=buyer_id, points=quote.points_redeemed,
            kind=JournalKind.POINTS_EXCHANGE if points_exchange else JournalKind.POINTS_REDEEM)
    return CheckoutDraft(order=order, timeline=timeline, journal=journal, keys=quote.quantity if is_card_key else 0,
                         sell=is_paid, points_journal=points_journal)


Claimed = dict[int, list[tuple[int, bytes]]]  # order id → (key id, ciphertext) pairs in id order


def drafts_write(drafts: Sequence[CheckoutDraft], now: datetime) -> tuple[list[CheckoutDraft], Claimed]:
    """Write the drafts in the caller's transaction: orders, key claims, events, journals. Returns the drafts
    written (one whose (buyer, request id) is already taken is skipped on PostgreSQL: a replay; elsewhere the
    INSERT raises `IntegrityError`) and the keys each claimed.

    Raises `SoldOutError` (one draft short of keys), `StockShortError` (several), `InsufficientFundsError` (a
    wallet short of its total): some rows are written by then, so the caller's transaction must roll back.
    Orders fulfilled later are handed to their fulfiller after commit.
    """
    if connection.vendor == "postgresql":
        written = _orders_insert_sql(drafts, now)  # with their events
    else:
        for draft in drafts:
            draft.order.save(force_insert=True)
        written = list(drafts)
    claimed = _claim_and_post(written)
    for draft in written:
        if draft.is_fulfilled_later:
            _fulfil_after_commit(draft.order.pk)
    order_aftercare(order_ids=[draft.order.pk for draft in written if draft.order.status == OrderStatus.DELIVERED],
                    event=AftercareEvent.DELIVERED)
    return written, claimed


def _fulfil_after_commit(order_id: int) -> None:
    from kameng.orders.fulfilment import order_fulfilment_enqueue

    transaction.on_commit(functools.partial(order_fulfilment_enqueue, order_id=order_id))


# The orders, and the events of those written (a replay's row is skipped, and so are its events), in one statement.
_ORDERS_INSERT_SQL = """
WITH written AS (
INSERT INTO orders_order (id, number, buyer_id, sku_id, title, quantity, unit_price, total_amount, refunded_amount,
                          price_lines, points_redeemed, points_offset, client_ip, delivery_note, topup_target, status,
                          request_id, sales_channel, created_at, expires_at, paid_at, delivered_at, updated_at)
SELECT coalesce(o.id, nextval(pg_get_serial_sequence('orders_order', 'id'))), o.number, o.buyer_id, o.sku_id,
       o.title, o.quantity, o.unit_price, o.total_amount, 0, o.price_lines,
       o.points_redeemed, o.points_offset, o.client_ip, '', decode(o.topup_target, 'base64'), o.status, o.request_id,
       o.sales_channel, %(now)s, o.expires_at, o.paid_at, o.delivered_at, %(now)s
FROM json_to_recordset(%(orders)s::json) AS o(id bigint, number text, buyer_id bigint, sku_id bigint, title text,
                                               quantity integer, unit_price numeric, total_amount numeric,
                                               price_lines jsonb, points_redeemed integer, points_offset numeric,
                                               client_ip inet, topup_target text, status text, request_id text,
                                               sales_channel text,
                                               expires_at timestamptz, paid_at timestamptz,
                                               delivered_at timestamptz)
ORDER BY o.buyer_id, o.request_id
ON CONFLICT (buyer_id, request_id) DO NOTHING
RETURNING id, number
), timeline AS (
INSERT INTO orders_orderevent (order_id, from_status, to_status, kind, params, created_at)
SELECT written.id, e.from_status, e.to_status, e.kind, '{}'::jsonb, %(now)s
FROM written
JOIN json_to_recordset(%(positions)s::json) AS p(number text, position integer, timeline integer) USING (number)
JOIN json_to_recordset(%(timelines)s::json) AS e(timeline integer, step integer, from_status text, to_status text,
                                                 kind text) USING (timeline)
ORDER BY p.position, e.step
)
SELECT id, number FROM written
"""


def _timestamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _orders_insert_sql(drafts: Sequence[CheckoutDraft], now: datetime) -> list[CheckoutDraft]:
    """Write the orders and every written order's timeline, in order (event ids ascend along each timeline). The
    orders of a batch mostly share one timeline: each distinct one is sent once."""
    with connection.cursor() as cursor:
        _orders_insert_send(cursor, drafts, now, {})
        return _orders_written(drafts, cursor.fetchall(), now)


def _orders_insert_send(cursor: Any, drafts: Sequence[CheckoutDraft], now: datetime, ids: dict[str, int]) -> None:
    """Execute the orders' INSERT (`ids`: the id an order number is to get, from the orders' sequence; else the
    column's default)."""
    timelines: dict[Timeline, int] = {}
    for draft in drafts:
        timelines.setdefault(draft.timeline, len(timelines))
    cursor.execute(_ORDERS_INSERT_SQL, {"now": now, "positions": json_rows(
        {"number": draft.order.number, "position": position, "timeline": timelines[draft.timeline]}
        for position, draft in enumerate(drafts)), "timelines": json_rows(
        {"timeline": index, "step": step, "from_status": from_status, "to_status": to_status, "kind": kind}
        for timeline, index in timelines.items()
        for step, (from_status, to_status, kind) in enumerate(timeline)), "orders": json_rows(
        {"id": ids.get(order.number), "number": order.number, "buyer_id": order.buyer_id,
         "sku_id": order.sku_id, "title": order.title,
         "quantity": order.quantity, "unit_price": str(order.unit_price),
         "total_amount": str(order.total_amount), "price_lines": order.price_lines,
         "points_redeemed": order.points_redeemed, "points_offset": str(order.points_offset),
         "client_ip": order.client_ip, "topup_target": _encrypted_base64(order.topup_target),
         "status": order.status, "request_id": order.request_id, "sales_channel": order.sales_channel,
         "expires_at": _timestamp(order.expires_at), "paid_at": _timestamp(order.paid_at),
         "delivered_at": _timestamp(order.delivered_at)}
        for order in (draft.order for draft in drafts))})


def _orders_written(drafts: Sequence[CheckoutDraft], rows: Sequence[tuple[Any, ...]],
                    now: datetime) -> list[CheckoutDraft]:
    """The drafts the INSERT wrote (its rows: id, number), marked written."""
    ids = {number: pk for pk, number in rows}
    written = []
    for draft in drafts:
        pk = ids.get(draft.order.number)
        if pk is not None:
            _mark_written(draft.order, pk=pk, now=now)
            written.append(draft)
    return written


def _encrypted_base64(text: object) -> str | None:
    """A direct top-up's target as the column stores it (the field's own encryption), for the JSON parameter."""
    if not isinstance(text, str):  # None: no target (the model reads as its stored type, text once loaded)
        return None
    field = Order._meta.get_field("topup_target")
    assert isinstance(field, EncryptedTextField)
    return base64.b64encode(field.ciphertext(text)).decode("ascii")


def _mark_written(order: Order, *, pk: int, now: datetime) -> None:
    """The draft was written with every column it carries: give it the id and the timestamps the row got."""
    order.pk = pk
    order.created_at = order.updated_at = now
    order._state.adding = False
    order._state.db = connection.alias


def _claim_and_post(written: list[CheckoutDraft]) -> Claimed:
    """Claim the written orders' keys and post their journals. On PostgreSQL the claims and the journals (with the
    wallets' lock and guarded move) go to the server together and are waited for once: none needs another's
    answer. One order alone claims first: finding no key may redraft it (`_waits_for_upstream`), its journal too."""
    wanting = [draft for draft in written if draft.keys]
    claimed: Claimed = {}
    if len(wanting) == 1:  # the single path: one plain claim, "sold out" said exactly
        draft = wanting[0]
        claimed[draft.order.pk] = _claim_one(draft)
        wanting = []
    # By SKU and unit price: which suppliers' keys an order may take depends on what it pays (a member price).
    by_sku: dict[tuple[int, Decimal], list[CheckoutDraft]] = defaultdict(list)
    for draft in wanting:
        by_sku[draft.order.sku_id, draft.order.unit_price].append(draft)
    journals = [journal for draft in written for journal in (draft.journal, draft.points_journal)
                if journal is not None]
    # A pipeline of one statement would only add a wait: its end (a Sync) on top of the statement's own.
    with statements_pipelined() if by_sku and journals else contextlib.nullcontext():
        claims = [(sku_id, unit_price, card_keys_claim_many_send(
            sku_id=sku_id, wants=[(draft.order.pk, draft.keys) for draft in by_sku[sku_id, unit_price]],
            unit_price=unit_price)) for sku_id, unit_price in sorted(by_sku)]
        if connection.vendor != "postgresql":
            _events_insert(written)
        posted = _journals_post(journals)
    claimed.update(_claims_read(claims, by_sku))
    posted()
    return claimed


_ClaimsSent = list[tuple[int, Decimal, Callable[[], Claimed]]]


def _claims_read(claims: _ClaimsSent, by_sku: Mapping[tuple[int, Decimal], list[CheckoutDraft]]) -> Claimed:
    """Each SKU group's keys (claiming on where a first statement came short); `StockShortError` for a group the
    stock cannot cover."""
    claimed: Claimed = {}
    for sku_id, unit_price, claimed_keys in claims:
        group = by_sku[sku_id, unit_price]
        try:
            keys = claimed_keys()
        except ClaimShortError as short:
            # The SKU's only group in the batch and it took nothing: the claim saw the stock as it is.
            took_nothing = short.claimed == 0 and [key for key in by_sku if key[0] == sku_id] == [(sku_id, unit_price)]
            raise StockShortError(group, sold_out=took_nothing and checkout_sold_out_proven(group)) from short
        claimed.update(keys)
    return claimed


class CommitUnknownError(Exception):
    """The COMMIT of a batch written at once failed: it may or may not have landed (`error` says why)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def drafts_at_once(drafts: Sequence[CheckoutDraft]) -> bool:
    """Whether `drafts_write_at_once` takes these drafts: on PostgreSQL, a batch (two or more) of paid card-key
    drafts. One alone takes the single path's claim (finding no key may redraft it)."""
    return (connection.vendor == "postgresql" and len(drafts) > 1
            and all(draft.keys and draft.sell for draft in drafts))


def drafts_write_at_once(drafts: Sequence[CheckoutDraft], now: datetime) -> tuple[list[CheckoutDraft], Claimed] | None:
    """The transaction of `drafts_write` for drafts `drafts_at_once` takes, whole, in one wait for the server.

    Each order gets its id beforehand, from the orders' sequence (`_OrderIds`), so that no statement of the
    transaction needs another's answer: BEGIN, the orders with their events, the claims, the journals (with the
    wallets' lock and guarded move), a guard and COMMIT go to the server as one message
    (`kameng.core.sql.OneMessage`). The guard and the journals' own (`strict`) make the transaction fail, and so
    never reach its COMMIT, where `drafts_write` would raise or skip: an order not written (a replay), a claim
    short of its keys (also a scan that must wrap), a wallet short of its total. Then it is rolled back and written
    again with the answers read before a COMMIT of its own (two waits), which says exactly what happened. Every
    wait for the server is also a wait for the GIL on a busy server, which is what bounds the group commit
    (bench/README.md).

    Not inside a transaction: it runs its own (the connection in autocommit, as Django leaves it outside `atomic`),
    and tells the aftercare once committed. Returns the drafts written and each one's keys. Returns None, rolled
    back, when an order was not written (its (buyer, request id) taken: a replay — `drafts_write` sorts it out).
    Raises, rolled back, what `drafts_write` raises; `CommitUnknownError` when the COMMIT may or may not have
    landed (the connection failed while it was on its way; a constraint checked at COMMIT raises `IntegrityError`:
    rolled back, surely).
    """
    try:
        written = _write_at_once(drafts, now, commit=True)
    except _GuardRefused:
        written = _write_at_once(drafts, now, commit=False)
    if written is None:
        return None
    order_aftercare(order_ids=[draft.order.pk for draft, _ in written], event=AftercareEvent.DELIVERED)
    return [draft for draft, _ in written], {draft.order.pk: keys for draft, keys in written}


class _GuardRefused(Exception):  # noqa: N818 - a control-flow signal of drafts_write_at_once
    """The message's guards failed its transaction: rolled back."""


# Fails the transaction (division by zero) unless every order was written and holds all its keys.
_AT_ONCE_GUARD_SQL = """
SELECT 1 / (CASE WHEN (SELECT count(*) FROM orders_order WHERE id = ANY(%(ids)s::bigint[])) = %(orders)s
                  AND (SELECT count(*) FROM inventory_cardkey WHERE order_id = ANY(%(ids)s::bigint[])) = %(keys)s
            THEN 1 ELSE 0 END)
"""


def _write_at_once(drafts: Sequence[CheckoutDraft], now: datetime, *,
                   commit: bool) -> list[tuple[CheckoutDraft, list[tuple[int, bytes]]]] | None:
    """`drafts_write_at_once`'s transaction: with `commit`, guarded and committed by its message (`_GuardRefused`
    when the guards failed it); without, checked by reading the answers, then committed."""
    ids = _order_ids.take(len(drafts))
    by_number = {draft.order.number: order_id for draft, order_id in zip(drafts, ids, strict=True)}
    message = OneMessage()
    orders = message.cursor()
    _orders_insert_send(orders, drafts, now, by_number)
    by_sku: dict[tuple[int, Decimal], list[CheckoutDraft]] = defaultdict(list)
    for draft in drafts:
        by_sku[draft.order.sku_id, draft.order.unit_price].append(draft)
    claims = [(sku_id, unit_price, card_keys_claim_many_send(
        sku_id=sku_id, wants=[(by_number[draft.order.number], draft.keys) for draft in by_sku[sku_id, unit_price]],
        unit_price=unit_price, cursor=message.cursor())) for sku_id, unit_price in sorted(by_sku)]
    journals = [journal for draft in drafts for journal in (draft.journal, draft.points_journal) if journal is not None]
    posted = journal_post_many_send(journals, cursor=message.cursor(), strict=commit) if journals else _nothing
    refill = _order_ids.refill_send(message)
    if commit:
        message.cursor().execute(_AT_ONCE_GUARD_SQL, {"ids": ids, "orders": len(drafts),
                                                      "keys": sum(draft.keys for draft in drafts)})
    _message_send(message, commit=commit)
    try:
        refill()
        written = _orders_written(drafts, orders.fetchall(), now)
        if len(written) < len(drafts):  # only without `commit`: the guard refuses it
            _transaction_end("ROLLBACK")
            return None
        claimed = _claims_read(claims, by_sku)
        posted()
    except BaseException as error:
        if commit:  # committed, yet its answers do not add up (the guards make this impossible): never again
            logger.exception("a committed checkout batch's answers do not add up")
            raise CommitUnknownError(error) from error
        _transaction_end("ROLLBACK")
        raise
    if not commit:
        _commit()
    return [(draft, claimed[draft.order.pk]) for draft in written]


def _message_send(message: OneMessage, *, commit: bool) -> None:
    """Send the batch's message, opening its transaction (and, with `commit`, ending it): raise `_GuardRefused`
    or the server's error when the server refused a statement (rolled back: nothing landed), `CommitUnknownError`
    when the message may have committed and its answer was lost."""
    try:
        message.send(begin=True, commit=commit)
    except DatabaseError as error:
        if commit and getattr(error.__cause__, "sqlstate", None) is None:
            connection.close()  # the connection failed on the way: the COMMIT may have run
            raise CommitUnknownError(error) from error
        _transaction_end("ROLLBACK")  # the server refused a statement (or the COMMIT): nothing landed
        if commit and not isinstance(error, IntegrityError):
            raise _GuardRefused from error
        raise
    except BaseException as error:
        if commit:  # anything else once the message may have gone: it may have committed
            connection.close()
            raise CommitUnknownError(error) from error
        _transaction_end("ROLLBACK")
        raise


def _commit() -> None:
    """COMMIT the second way's transaction: `IntegrityError` when a constraint checked at COMMIT failed (rolled
    back, surely), `CommitUnknownError` when the COMMIT may or may not have landed."""
    try:
        _transaction_end("COMMIT")
    except IntegrityError:
        _transaction_end("ROLLBACK")  # the server rolled it back: say so to the connection, if it is still there
        raise
    except DatabaseError as error:
        connection.close()  # whatever state it is in, it is not one to write the next batch in
        raise CommitUnknownError(error) from error


def _transaction_end(command: str) -> None:
    """COMMIT or ROLLBACK the transaction a message opened (Django's own calls: psycopg sends them whenever the
    server is in a transaction, autocommit or not). A ROLLBACK that fails (the connection is gone, and the server
    rolls back with it) closes the connection instead of hiding the error being raised."""
    if command == "COMMIT":
        connection.commit()
        return
    try:
        connection.rollback()
    except DatabaseError:
        logger.warning("ROLLBACK of a checkout batch failed; its connection is closed", exc_info=True)
        connection.close()


class _OrderIds:
    """Order ids taken from the orders' sequence ahead of their batch (`drafts_write_at_once`), refilled by the
    batches' own messages. Ids older than FRESH_SECONDS are dropped, so that ids follow the time orders are written
    (lists sort by id) within that bound; a dropped or unused id is a gap, as a rolled-back INSERT leaves."""

    FRESH_SECONDS = 1.0
    SQL = "SELECT nextval(pg_get_serial_sequence('orders_order', 'id')) FROM generate_series(1, %s)"

    def __init__(self) -> None:
        self._ids: deque[int] = deque()
        self._at = 0.0
        self._lock = threading.Lock()

    @staticmethod
    def wanted() -> int:
        return int(settings.KAMENG_CHECKOUT_GROUP_MAX)

    def take(self, count: int) -> list[int]:
        with self._lock:
            self._drop_stale()
            if len(self._ids) < count:
                with connection.cursor() as cursor:
                    cursor.execute(self.SQL, [count + self.wanted()])
                    self._add([row[0] for row in cursor.fetchall()])
            return [self._ids.popleft() for _ in range(count)]

    def refill_send(self, message: OneMessage) -> Callable[[], None]:
        """Ask for the next batches' ids in this message when fewer than a batch's worth are left."""
        with self._lock:
            if len(self._ids) >= self.wanted():
                return _nothing
        cursor = message.cursor()
        cursor.execute(self.SQL, [self.wanted() * 2])

        def refill() -> None:
            fresh = [row[0] for row in cursor.fetchall()]
            with self._lock:
                self._drop_stale()
                self._add(fresh)

        return refill

    def forget(self) -> None:
        with self._lock:
            self._ids.clear()

    def _drop_stale(self) -> None:
        if time.monotonic() - self._at > self.FRESH_SECONDS:
            self._ids.clear()

    def _add(self, ids: list[int]) -> None:
        self._ids.extend(ids)
        self._at = time.monotonic()


_order_ids = _OrderIds()


def order_ids_forget() -> None:
    """Drop the order ids this process took ahead (tests; a restored database whose sequence went back)."""
    _order_ids.forget()


def checkout_sold_out_proven(drafts: list[CheckoutDraft]) -> bool:
    """Whether the single path would answer every one of these paid card-key drafts (one SKU and unit price, written
    in the caller's transaction, whose claim took no key) "sold out" with nothing sellable: no available key of the
    SKU at their price or any other, no unpaid order of it near its deadline to take keys over from, and no upstream
    that takes any of them (`_waits_for_upstream`, asked once per quantity). Then the SKU is remembered as sold out
    in this process (`card_keys_sold_out_note`), as the single path's first loser would; a batch's losers cost one
    such check instead of a transaction each."""
    order = drafts[0].order
    if not card_keys_nothing_sellable(sku_id=order.sku_id, unit_price=order.unit_price):
        return False
    if reservations_could_take_over(sku_id=order.sku_id):
        return False
    asked: set[int] = set()
    for draft in drafts:
        if draft.order.quantity in asked:
            continue
        asked.add(draft.order.quantity)
        if draft.journal is not None and card_key_upstream_takes(draft.order):
            return False
    card_keys_sold_out_note(sku_id=order.sku_id)
    return True


def _claim_one(draft: CheckoutDraft) -> list[tuple[int, bytes]]:
    order = draft.order
    try:
        # No savepoint: a short claim gives back what it took and raises before any statement fails.
        return card_keys_claim(sku_id=order.sku_id, order_id=order.pk, quantity=draft.keys, sell=draft.sell,
                               unit_price=order.unit_price)
    except SoldOutError as error:
        sold_out = error
    # A paying buyer is not refused while the keys are only held by others' unpaid orders near their deadline.
    if draft.sell and reservations_take_over(sku_id=order.sku_id, buyer_id=order.buyer_id, quantity=draft.keys):
        try:
            return card_keys_claim(sku_id=order.sku_id, order_id=order.pk, quantity=draft.keys, sell=draft.sell,
                                   unit_price=order.unit_price)
        except SoldOutError as error:
            sold_out = error
    if _waits_for_upstream(draft):
        return []
    if sold_out.nothing_sellable:  # the next buyers of it in this process are answered without a transaction
        card_keys_sold_out_note(sku_id=order.sku_id)
    raise sold_out


def _waits_for_upstream(draft: CheckoutDraft) -> bool:
    """No key in stock for this written draft: when an upstream can sell them (kameng.orders.upstream), the order
    waits for it instead of failing — paid: PAID (not delivered), its money into the hold, fulfilled after commit;
    unpaid: written without reserved keys, fulfilled when paid. A points exchange (no money to hold) never waits."""
    order = draft.order
    if (draft.sell and draft.journal is None) or not card_key_upstream_takes(order):
        return False
    draft.keys = 0
    if draft.sell:
        draft.timeline = checkout_timeline(is_paid=True, is_delivered=False)
        draft.journal = recipes.order_payment_into_hold(
            order_number=order.number, memo=order_payment_memo(order),
            wallet_id=wallet_account_id(user_id=order.buyer_id), amount=order.total_amount)
        order.status, order.delivered_at = OrderStatus.PAID, None
        Order.objects.filter(pk=order.pk).update(status=order.status, delivered_at=None)
        if connection.vendor == "postgresql":  # its events were written with it (`_orders_insert_sql`)
            OrderEvent.objects.filter(order_id=order.pk, to_status=OrderStatus.DELIVERED).delete()
    return True


def _events_insert(written: list[CheckoutDraft]) -> None:
    """Every order's timeline, in order (event ids ascend along each timeline), on the ORM backends (PostgreSQL
    writes them with the orders)."""
    OrderEvent.objects.bulk_create([
        OrderEvent(order=draft.order, from_status=from_status, to_status=to_status, kind=kind, params={})
        for draft in written for from_status, to_status, kind in draft.timeline])


def _journals_post(journals: list[JournalDraft]) -> Callable[[], None]:
    """Post the journals; returns the function that says whether PostgreSQL's guarded batch went through (a no-op
    elsewhere: each journal was posted, and checked, one by one)."""
    if connection.vendor == "postgresql" and journals:
        return journal_post_many_send(journals)
    for journal in journals:
        journal_draft_post(draft=journal)
    return _nothing


def _nothing() -> None:
    return None
