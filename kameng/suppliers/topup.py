"""Direct top-up (直充) orders and their attempts: routing a paid order to a supplier, and writing what the supplier
answered — the one place an attempt's outcome moves the order and its money.

The order is never paid twice: an attempt is RECORDED in the transaction that routes the order, submitted after
commit (kameng.suppliers.dispatch), and every answer — the submit's, a query's, a callback's — is written here in a
short transaction holding the order's lock then the attempt's (kameng.suppliers.locks):

- SUCCEEDED: the attempt succeeds, the order is DELIVERED (TOPUP_SUCCEEDED with the operator serial) and its held
  money goes to revenue (as a manual delivery does; the supplier's payable hooks onto DELIVERED elsewhere).
- PROCESSING: the upstream has it; the result comes by callback, or by query when the callback is overdue (or the
  connector has none).
- FAILED (confirmed): the attempt fails and the order goes to the next eligible offer (TOPUP_FAILED_OVER, a new
  attempt with the next sequence), or, with none left, DELIVERY_FAILED and its whole total back to the wallet, once.
- UNKNOWN (timeout, lost answer): queried later, never resubmitted blind. NOT_FOUND from a query, once the grace
  after the submit has passed, means the upstream never got it: the attempt goes back to RECORDED and is submitted
  again to the SAME supplier with the SAME `customer_order_no` (the idempotency key).

A settled attempt does not move again: duplicate and late answers are ignored, except a success reported for an
attempt we had failed (or for an order no longer waiting) — a double delivery risk, logged as an error and flagged
for staff (`needs_review`), never dropped silently.

Staff settle a flagged attempt after checking with the supplier (`attempt_review_settle`): an attempt still
unsettled moves as a supplier's answer would (succeeded with the operator serial → delivered; failed → the next
offer or the refund, once); on a settled one the verdict is recorded and nothing moves again. Either way the flag is
cleared and the verdict with its reason goes on the order's staff timeline (TOPUP_REVIEWED).

Card-key orders bought upstream (kameng.suppliers.upstream_cards) go through the same attempts as a TopupKind.CARD
request: SUCCEEDED must carry exactly the order's quantity of new cards, stored as the order's keys
(kameng.inventory.upstream_keys) — fewer, more, or one already on the platform fails the attempt (failover or
refund, as a confirmed failure) and flags it for staff, the cards kept withdrawn; a success without its cards
(Fulu's callback carries none) is queried for them. Staff cannot settle a card attempt as succeeded by hand (no
cards to deliver), only as failed.

Attempt cost: the offer's unit price × the order's quantity, copied when routed (a later price change does not touch
it); the unit price is sent as the most we pay (`max_price`).
"""

from __future__ import annotations

import enum
import functools
import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext_noop as _

from kameng.catalog.models import DeliveryKind, Product, Sku
from kameng.core.errors import ApplicationError, ConflictError
from kameng.core.money import money
from kameng.core.sql import rows_insert, rows_update
from kameng.inventory.upstream_keys import card_keys_store_from_upstream
from kameng.ledger import recipes
from kameng.ledger.services import JournalDraft, journal_draft_post, journal_post_many
from kameng.orders.events import fact
from kameng.orders.fulfilment import batch_defer, order_refund_failed_delivery
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.state import transition
from kameng.suppliers.connectors.base import Outcome, TopupAnswer, TopupKind, TopupRequest
from kameng.suppliers.locks import attempts_lock_with_orders
from kameng.suppliers.models import AttemptStatus, TopupAttempt
from kameng.suppliers.routing import Route, order_route, route_refusals

logger = logging.getLogger(__name__)

SETTLED = frozenset({AttemptStatus.SUCCEEDED, AttemptStatus.FAILED})
# What writing an answer may change on an attempt (the counters belong to the dispatcher's claims).
OUTCOME_FIELDS = ["status", "supplier_order_id", "operator_serial", "failure_code", "failure_message", "finished_at",
                  "next_check_at", "needs_review", "review_note", "is_submit_outstanding", "updated_at"]
ORDER_OUTCOME_FIELDS = ["status", "delivered_at", "refunded_amount", "updated_at"]
TARGET_ACCOUNT_KEYS = ("phone", "account")

REASON_NO_OFFER = _("暂无可用的供货商")
REASON_NO_TARGET = _("缺少充值账号")
REASON_ALL_FAILED = _("供货商充值失败")
REASON_CARDS_FAILED = _("供货商未能供货")


class Via(enum.StrEnum):
    SUBMIT = "submit"
    QUERY = "query"
    CALLBACK = "callback"
    STAFF = "staff"  # staff settled an attempt flagged for review (`attempt_review_settle`)


VERDICT_SUCCEEDED = _("已到账")
VERDICT_FAILED = _("充值失败")


# --- routing a paid order ------------------------------------------------------------------------------------

def order_fulfil_direct_topup(order: Order) -> list[OrderEvent]:
    """The fulfiller of direct top-ups (settings.KAMENG_FULFILLERS), run by kameng.orders.fulfilment on the locked
    paid order: PAID → FULFILLING, routed to the best offer, its attempt RECORDED and handed to the dispatcher after
    commit. No offer (or no target to credit): DELIVERY_FAILED, which the caller refunds. An order already being
    fulfilled is left to its attempts (the sweeper drives them)."""
    if order.status != OrderStatus.PAID:
        return []
    events = [transition(order, OrderStatus.FULFILLING, said=fact(OrderEventKind.TOPUP_SUBMITTING))]
    if not topup_target_of(order):
        return [*events, transition(order, OrderStatus.DELIVERY_FAILED,
                                    said=fact(OrderEventKind.DELIVERY_FAILED, reason=REASON_NO_TARGET))]
    return events + _route_next(order, sequence=1, reason=REASON_NO_OFFER)


def order_route_first(order: Order, *, reason: str) -> list[OrderEvent]:
    """Route a (FULFILLING) order that has no attempt yet to its best offer, or fail it with `reason`: the first
    step of a direct top-up, and of a card-key order bought upstream (kameng.suppliers.upstream_cards)."""
    return _route_next(order, sequence=1, reason=reason)


def _route_next(order: Order, *, sequence: int, reason: str) -> list[OrderEvent]:
    """Route the (FULFILLING) order to its next offer, or fail it with `reason` when none is left."""
    route = order_route(order=order, is_first=sequence == 1)
    if route is None:
        failed = transition(order, OrderStatus.DELIVERY_FAILED, said=fact(OrderEventKind.DELIVERY_FAILED,
                                                                            reason=reason))
        if sequence > 1:  # every offer was tried: the attempts say why
            return [failed]
        # No supplier was ever asked (no attempt): staff read why on the order's timeline, the buyer reads `reason`.
        why = fact(OrderEventKind.TOPUP_NO_ROUTE, detail=route_refusals(order=order))
        return [OrderEvent(order=order, kind=why.kind, params=why.params), failed]
    _attempt_record(order, route, sequence=sequence)
    routed = fact(OrderEventKind.ROUTED, supplier=route.offer.supplier.name, price=route.offer.price,
                  reason=route.reason)
    return [OrderEvent(order=order, kind=routed.kind, params=routed.params)]


def _attempt_record(order: Order, route: Route, *, sequence: int) -> TopupAttempt:
    """The order's attempt, RECORDED, handed to the dispatcher after commit. In a fulfilment batch on PostgreSQL it
    is inserted with the batch's other attempts in one statement at the batch's end (kameng.orders.fulfilment) and
    they are handed over together — unless its offer has a daily cap: routing counts the attempts written so far."""
    now = timezone.now()
    attempt = TopupAttempt(
        order=order, offer=route.offer, supplier=route.offer.supplier, sequence=sequence,
        customer_order_no=f"{order.number}-{sequence}", cost=money(route.offer.price * order.quantity),
        status=AttemptStatus.RECORDED,
        next_check_at=now + timedelta(seconds=settings.KAMENG_TOPUP_REDRIVE_AFTER_SECONDS))
    deferred = (batch_defer("topup attempts", _attempts_insert)
                if connection.vendor == "postgresql" and route.offer.max_per_day is None else None)
    if deferred is not None:
        deferred.append(attempt)
        return attempt
    attempt.save(force_insert=True)
    transaction.on_commit(functools.partial(_dispatch, [attempt.pk]))
    return attempt


def _attempts_insert(attempts: list[TopupAttempt]) -> None:
    """A fulfilment batch's attempts in one INSERT, handed to the dispatcher together after commit."""
    rows_insert(TopupAttempt, attempts, key="customer_order_no")
    transaction.on_commit(functools.partial(_dispatch, [attempt.pk for attempt in attempts]))


def _dispatch(attempt_ids: list[int]) -> None:
    from kameng.suppliers.dispatch import topup_dispatch

    topup_dispatch(attempt_ids=attempt_ids)


def topup_target_of(order: Order) -> dict[str, str]:
    """The buyer's input (phone number, or game account with region/server/role…) as a dict; {} when missing or
    without an account to credit."""
    return _target_read(order.topup_target)


def _target_read(stored: object) -> dict[str, str]:
    raw = str(stored or "")
    try:
        target = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(target, dict) or not any(str(target.get(key) or "").strip() for key in TARGET_ACCOUNT_KEYS):
        return {}
    return {str(key): str(value) for key, value in target.items() if value not in (None, "")}


def is_mobile_product(product: Product) -> bool:
    """话费 products: the form template asks for a field named "phone"."""
    return _is_mobile_form(product.topup_form)


def _is_mobile_form(topup_form: object) -> bool:
    return isinstance(topup_form, list) and any(isinstance(field, dict) and field.get("name") == "phone"
                                                for field in topup_form)


@dataclass(frozen=True)
class AttemptToSend:
    """What a request is made of, read as one row per attempt (the dispatcher's claim: `attempts_to_send`)."""

    attempt_id: int
    order_id: int
    supplier_id: int
    customer_order_no: str
    cost: Decimal
    upstream_product_id: str
    quantity: int
    topup_target: object  # the order's decrypted input
    face_value: Decimal | None
    delivery_kind: str
    topup_form: object


def attempts_to_send(*, attempt_ids: Sequence[int]) -> list[AttemptToSend]:
    """The rows the requests of these attempts are made from, in id order, in one query (no model built)."""
    rows = (TopupAttempt.objects.filter(pk__in=sorted(attempt_ids)).order_by("pk")
            .values_list("pk", "order_id", "supplier_id", "customer_order_no", "cost", "offer__upstream_product_id",
                         "order__quantity", "order__topup_target", "order__sku__face_value",
                         "order__sku__product__delivery_kind", "order__sku__product__topup_form"))
    return [AttemptToSend(*row) for row in rows]


def topup_request_of(attempt: AttemptToSend, *, notify_url: str = "") -> TopupRequest:
    """What the supplier is sent for this attempt. CARD for a card-key product (the upstream's product and the
    quantity: kameng.suppliers.upstream_cards), MOBILE for a phone product (the face value to credit), DIRECT
    otherwise (the account, the rest of the form as `extra`)."""
    max_price = money(attempt.cost / Decimal(attempt.quantity))
    if attempt.delivery_kind == DeliveryKind.CARD_KEY:
        return TopupRequest(customer_order_no=attempt.customer_order_no, kind=TopupKind.CARD,
                            upstream_product_id=attempt.upstream_product_id, quantity=attempt.quantity,
                            max_price=max_price, notify_url=notify_url)
    target = _target_read(attempt.topup_target)
    mobile = _is_mobile_form(attempt.topup_form)
    account = target.get("phone" if mobile else "account") or target.get("account") or target.get("phone", "")
    extra = {key: value for key, value in target.items() if key not in TARGET_ACCOUNT_KEYS}
    return TopupRequest(
        customer_order_no=attempt.customer_order_no, kind=TopupKind.MOBILE if mobile else TopupKind.DIRECT,
        upstream_product_id=attempt.upstream_product_id, quantity=attempt.quantity, charge_account=account,
        face_value=attempt.face_value, extra=extra, max_price=max_price, notify_url=notify_url)


# --- writing an answer ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OutcomeToWrite:
    """One answer to write: the attempt (and its order, when the caller knows it), what came back and how."""

    attempt_id: int
    answer: TopupAnswer
    via: Via
    has_callbacks: bool = True
    order_id: int | None = None


def attempt_outcome_apply(*, attempt_id: int, answer: TopupAnswer, via: Via, has_callbacks: bool = True,
                          order_id: int | None = None) -> None:
    """Write what the supplier answered for this attempt (idempotent: a settled attempt never moves again);
    `order_id`, the attempt's order, when the caller has it."""
    attempt_outcomes_apply(outcomes=[OutcomeToWrite(attempt_id=attempt_id, answer=answer, via=via,
                                                    has_callbacks=has_callbacks, order_id=order_id)])


def attempt_outcomes_apply(*, outcomes: Sequence[OutcomeToWrite]) -> None:
    """Write many answers in one short transaction (the dispatcher's group commit): the orders locked in id order,
    then their attempts, each answer applied in turn exactly as a single one would be (two answers for one attempt:
    the second sees what the first did), then one UPDATE of the attempts, one of the orders, one INSERT of the
    events and, on PostgreSQL, the journals of the successes set-based. A failover or a refund (rare) writes its
    rows as it goes."""
    if not outcomes:
        return
    with transaction.atomic():
        orders, attempts = attempts_lock_with_orders(
            pairs=[(outcome.attempt_id, outcome.order_id) for outcome in outcomes])
        status_locked = {order.pk: order.status for order in orders.values()}
        card_orders = _card_key_orders(orders.values())
        journals: list[JournalDraft] = []
        events: list[OrderEvent] = []
        moved_attempts: dict[int, TopupAttempt] = {}
        moved_orders: dict[int, Order] = {}
        for outcome in outcomes:
            attempt = attempts[outcome.attempt_id]
            order = orders[attempt.order_id]
            if _apply(order, attempt, outcome, journals=journals, events=events, is_card=order.pk in card_orders):
                moved_attempts[attempt.pk] = attempt
            if order.status != status_locked[order.pk]:
                moved_orders[order.pk] = order
        now = timezone.now()
        for attempt in moved_attempts.values():
            attempt.updated_at = now
        for order in moved_orders.values():
            order.updated_at = now
        rows_update(TopupAttempt, list(moved_attempts.values()), OUTCOME_FIELDS)
        rows_update(Order, list(moved_orders.values()), ORDER_OUTCOME_FIELDS)
        _events_insert(events)
        _journals_post(journals)


def _card_key_orders(orders: Collection[Order]) -> set[int]:
    """The card-key orders among these (bought upstream: kameng.suppliers.upstream_cards), in one query."""
    sku_ids = {order.sku_id for order in orders}
    cards = set(Sku.objects.filter(pk__in=sorted(sku_ids), product__delivery_kind=DeliveryKind.CARD_KEY)
                .values_list("pk", flat=True))
    return {order.pk for order in orders if order.sku_id in cards}


def _events_insert(events: list[OrderEvent]) -> None:
    if connection.vendor == "postgresql":
        rows_insert(OrderEvent, events)
    elif events:
        OrderEvent.objects.bulk_create(events)


def _journals_post(journals: list[JournalDraft]) -> None:
    if not journals:
        return
    if connection.vendor == "postgresql":
        journal_post_many(journals)
        return
    for journal in journals:
        journal_draft_post(draft=journal)


def _apply(order: Order, attempt: TopupAttempt, outcome: OutcomeToWrite, *, journals: list[JournalDraft],
           events: list[OrderEvent], is_card: bool = False) -> bool:
    """Apply one answer to the locked order and attempt (in memory, save for a failover's rows); whether the
    attempt is to be written. `is_card`: the order is a card-key order bought upstream."""
    answer, via = outcome.answer, outcome.via
    if attempt.status in SETTLED:
        _late(order, attempt, answer, via)
        return False
    if answer.supplier_order_id and not attempt.supplier_order_id:
        attempt.supplier_order_id = answer.supplier_order_id[:64]
    if via == Via.SUBMIT:
        attempt.is_submit_outstanding = False
    if answer.outcome == Outcome.SUCCEEDED and is_card and not answer.cards and via != Via.QUERY:
        # Done upstream, but its cards are not in this answer (Fulu's callback carries none): a query brings them.
        events += _processing(order, attempt, has_callbacks=False, is_card=True)
    elif answer.outcome == Outcome.SUCCEEDED and is_card:
        events += _cards_succeeded(order, attempt, answer, journals=journals)
    elif answer.outcome == Outcome.SUCCEEDED:
        events += _succeeded(order, attempt, answer, journals=journals)
    elif answer.outcome == Outcome.FAILED:
        events += _failed(order, attempt, answer, is_card=is_card)
    elif answer.outcome == Outcome.PROCESSING:
        events += _processing(order, attempt, has_callbacks=outcome.has_callbacks, is_card=is_card)
    elif answer.outcome == Outcome.NOT_FOUND and via == Via.QUERY and _may_resubmit(attempt):
        _resubmit(attempt)
    else:  # UNKNOWN (or a NOT_FOUND that proves nothing): ask again later
        if attempt.status != AttemptStatus.PROCESSING:  # once acknowledged, it stays acknowledged
            attempt.status = AttemptStatus.UNKNOWN
        _schedule_query(attempt, first=timedelta(seconds=settings.KAMENG_TOPUP_QUERY_FIRST_SECONDS))
    return True


def _succeeded(order: Order, attempt: TopupAttempt, answer: TopupAnswer, *,
               journals: list[JournalDraft]) -> list[OrderEvent]:
    attempt.status = AttemptStatus.SUCCEEDED
    attempt.operator_serial = answer.operator_serial[:100]
    attempt.finished_at = timezone.now()
    attempt.next_check_at = None
    if order.status != OrderStatus.FULFILLING:  # refunded, or delivered by another attempt: staff must look
        _flag(attempt, f"订单已是「{order.get_status_display()}」时供货商报告充值成功：可能重复充值，请与供货商核对")
        return []
    order.delivered_at = attempt.finished_at
    journals.append(recipes.order_hold_released(
        order_number=order.number, memo=f"直充到账 {order.title}"[:200], amount=order.total_amount))
    said = fact(OrderEventKind.TOPUP_SUCCEEDED, operator_serial=attempt.operator_serial)
    return [transition(order, OrderStatus.DELIVERED, said=said)]


def _cards_succeeded(order: Order, attempt: TopupAttempt, answer: TopupAnswer, *,
                     journals: list[JournalDraft]) -> list[OrderEvent]:
    """A card order's success: its cards become the order's keys (kameng.inventory.upstream_keys: encrypted,
    fingerprinted, with the supplier and its unit cost) and the order is delivered, its hold released to revenue.
    Not exactly the quantity of new, valid cards (fewer, more, one already on the platform): nothing is delivered,
    the cards are kept withdrawn, the attempt fails (the next offer, or the refund) and is flagged for staff — the
    upstream may have charged for them. An order no longer waiting (refunded, delivered by another attempt): the
    cards are kept withdrawn and the attempt flagged, the order does not move."""
    waiting = order.status == OrderStatus.FULFILLING
    keys = card_keys_store_from_upstream(
        order_id=order.pk if waiting else None, sku_id=order.sku_id, secrets=answer.cards, expected=order.quantity,
        supplier_id=attempt.supplier_id, cost=money(attempt.cost / Decimal(order.quantity)))
    if not waiting:
        _settle_succeeded(attempt, answer)
        _flag(attempt, f"订单已是「{order.get_status_display()}」时供货商交付了 {len(answer.cards)} 张卡密"
                       f"（已作废留存，未发给买家）：可能重复采购，请与供货商核对")
        return []
    if not keys.is_delivered:
        problem = keys.problem(expected=order.quantity)
        _flag(attempt, f"{problem}：未发给买家，本次供货按失败处理，请与供货商核对")
        refused = TopupAnswer(outcome=Outcome.FAILED, supplier_order_id=answer.supplier_order_id,
                              code="cards_refused", message=problem)
        return _failed(order, attempt, refused, is_card=True)
    _settle_succeeded(attempt, answer)
    order.delivered_at = attempt.finished_at
    journals.append(recipes.order_hold_released(
        order_number=order.number, memo=f"上游卡密发货 {order.title}"[:200], amount=order.total_amount))
    return [transition(order, OrderStatus.DELIVERED)]


def _settle_succeeded(attempt: TopupAttempt, answer: TopupAnswer) -> None:
    attempt.status = AttemptStatus.SUCCEEDED
    attempt.operator_serial = answer.operator_serial[:100]
    attempt.finished_at = timezone.now()
    attempt.next_check_at = None


def _failed(order: Order, attempt: TopupAttempt, answer: TopupAnswer, *, is_card: bool = False) -> list[OrderEvent]:
    attempt.status = AttemptStatus.FAILED
    attempt.failure_code = answer.code[:32]
    attempt.failure_message = (answer.message or answer.code or "失败")[:200]
    attempt.finished_at = timezone.now()
    attempt.next_check_at = None
    if order.status != OrderStatus.FULFILLING:
        return []
    next_sequence = (TopupAttempt.objects.filter(order_id=order.pk).aggregate(last=Max("sequence"))["last"] or 0) + 1
    attempt.save(update_fields=OUTCOME_FIELDS)  # routing must see this attempt as tried and failed
    failed_over = fact(OrderEventKind.TOPUP_FAILED_OVER, reason=attempt.failure_message)
    events = _route_next(order, sequence=next_sequence, reason=REASON_CARDS_FAILED if is_card else REASON_ALL_FAILED)
    if order.status == OrderStatus.DELIVERY_FAILED:
        return events + order_refund_failed_delivery(order)
    return [OrderEvent(order=order, kind=failed_over.kind, params=failed_over.params), *events]


def _processing(order: Order, attempt: TopupAttempt, *, has_callbacks: bool, is_card: bool = False) -> list[OrderEvent]:
    events = []
    if attempt.status != AttemptStatus.PROCESSING:
        attempt.status = AttemptStatus.PROCESSING
        if not is_card:  # "充值中" is a top-up's; a card order's timeline already says it is being delivered
            events.append(OrderEvent(order=order, kind=OrderEventKind.TOPUP_PROCESSING, params={}))
    wait = settings.KAMENG_TOPUP_CALLBACK_WAIT_SECONDS if has_callbacks else settings.KAMENG_TOPUP_QUERY_FIRST_SECONDS
    _schedule_query(attempt, first=timedelta(seconds=wait))
    return events


def _grace_passed(attempt: TopupAttempt) -> bool:
    grace = timedelta(seconds=settings.KAMENG_TOPUP_NOT_FOUND_GRACE_SECONDS)
    return attempt.submitted_at is None or timezone.now() - attempt.submitted_at >= grace


def _may_resubmit(attempt: TopupAttempt) -> bool:
    """"No such order" lets the same number go again only if nothing ever acknowledged it (no supplier order id, never
    seen processing), the last submit's answer came back (not still in flight), the grace since it has passed, and
    the submits are not used up (then staff look: the attempt stays unknown, no more queries)."""
    if (attempt.status != AttemptStatus.UNKNOWN or attempt.supplier_order_id or attempt.is_submit_outstanding
            or not _grace_passed(attempt)):
        return False
    if attempt.submit_count >= settings.KAMENG_TOPUP_SUBMIT_MAX:
        _flag(attempt, f"提交 {attempt.submit_count} 次后供货商仍查无此单，请与供货商核对后处理")
        return False
    return True


def _resubmit(attempt: TopupAttempt) -> None:
    """The upstream never got it: submit the same number again (after commit), to the same supplier."""
    attempt.status = AttemptStatus.RECORDED
    attempt.next_check_at = timezone.now() + timedelta(seconds=settings.KAMENG_TOPUP_REDRIVE_AFTER_SECONDS)
    logger.info("top-up %s not found upstream %d s after its submit: submitting it again",
                attempt.customer_order_no, settings.KAMENG_TOPUP_NOT_FOUND_GRACE_SECONDS)
    transaction.on_commit(functools.partial(_dispatch, [attempt.pk]))


def _schedule_query(attempt: TopupAttempt, *, first: timedelta) -> None:
    """The next query: `first` after the first answer, then doubling with each query made, up to the maximum; past
    the last query allowed, staff must look (the attempt stays as it is, no more queries)."""
    if attempt.query_count >= settings.KAMENG_TOPUP_QUERY_MAX:
        attempt.next_check_at = None
        _flag(attempt, f"查询 {attempt.query_count} 次仍无最终结果，请与供货商核对后处理")
        return
    delay = min(first * (2 ** attempt.query_count), timedelta(seconds=settings.KAMENG_TOPUP_BACKOFF_MAX_SECONDS))
    now = timezone.now()
    if attempt.next_check_at is not None and attempt.next_check_at <= now:
        # Due already: a callback prompted it while this call was out (it can come before the submit's answer is
        # written), or the call outlasted its claim. Pushing it out would lose the prompt: the order would wait for
        # the backed-off query instead (KAMENG_TOPUP_CALLBACK_WAIT_SECONDS). It stays due, queried next.
        return
    attempt.next_check_at = now + delay


def _flag(attempt: TopupAttempt, note: str) -> None:
    attempt.needs_review = True
    attempt.review_note = note[:200]
    logger.error("top-up %s needs staff review: %s", attempt.customer_order_no, note)


def _late(order: Order, attempt: TopupAttempt, answer: TopupAnswer, via: Via) -> None:
    """An answer for a settled attempt: a duplicate or late one changes nothing, but a success after we failed
    it (or a failure after it succeeded) is a conflict staff must resolve with the supplier."""
    conflict = ((attempt.status == AttemptStatus.FAILED and answer.outcome == Outcome.SUCCEEDED)
                or (attempt.status == AttemptStatus.SUCCEEDED and answer.outcome == Outcome.FAILED))
    if not conflict:
        logger.info("top-up %s already %s: %s answer (%s) ignored", attempt.customer_order_no, attempt.status,
                    via, answer.outcome)
        return
    if answer.outcome == Outcome.SUCCEEDED:
        if answer.cards:  # kept withdrawn (never delivered twice), their fingerprints taken
            card_keys_store_from_upstream(order_id=None, sku_id=order.sku_id, secrets=answer.cards,
                                          expected=order.quantity, supplier_id=attempt.supplier_id,
                                          cost=money(attempt.cost / Decimal(order.quantity)))
        _flag(attempt, f"已判定失败后供货商报告充值成功（流水号 {answer.operator_serial or '无'}，订单「"
                       f"{order.get_status_display()}」）：可能重复充值，请与供货商核对")
        attempt.operator_serial = attempt.operator_serial or answer.operator_serial[:100]
    else:
        _flag(attempt, f"已到账后供货商报告失败（{answer.message or answer.code}）：请与供货商核对")
    attempt.save(update_fields=["needs_review", "review_note", "operator_serial", "updated_at"])


# --- staff settling an attempt flagged for review -----------------------------------------------------------

def attempt_review_settle(*, attempt_id: int, succeeded: bool, reason: str, staff_name: str,
                          operator_serial: str = "") -> str:
    """Staff checked a flagged (需人工核查) attempt with the supplier and record the outcome, with their reason.

    Unsettled (still unknown or processing): written through the same path as a supplier's answer — succeeded
    (`operator_serial` required) delivers the order and releases its money; failed fails over to the next offer or
    refunds the order, once. Settled already: the order and its money do not move again (no second refund, no
    second delivery); the verdict is recorded for the follow-up with the supplier. Returns what happened, for staff.
    Raises ApplicationError for a missing reason or serial, ConflictError when the attempt is not (or no longer)
    flagged."""
    reason, operator_serial = reason.strip()[:200], operator_serial.strip()[:100]
    if not reason:
        raise ApplicationError("请填写核查说明", code="review_reason_required")
    if succeeded and not operator_serial:
        raise ApplicationError("确认已到账时请填写运营商流水号", code="operator_serial_required")
    with transaction.atomic():
        orders, attempts = attempts_lock_with_orders(pairs=[(attempt_id, None)])
        attempt = attempts[attempt_id]
        order = orders[attempt.order_id]
        if not attempt.needs_review:
            raise ConflictError("该直充提交无需核查，或已由其他工作人员处理", code="review_not_needed")
        was_settled = attempt.status in SETTLED
        is_card = bool(_card_key_orders([order]))
        if is_card and succeeded and not was_settled:
            raise ApplicationError("上游卡密订单须由供货商返回卡密才能发货，无法人工确认到账：请让供货商处理后等待系统"
                                   "查询，或判定失败（转下一家供货商或退款）", code="card_review_needs_cards")
        events: list[OrderEvent] = []
        journals: list[JournalDraft] = []
        if not was_settled:
            answer = TopupAnswer(outcome=Outcome.SUCCEEDED if succeeded else Outcome.FAILED,
                                 operator_serial=operator_serial, code="staff_review", message=f"人工核查：{reason}")
            _apply(order, attempt, OutcomeToWrite(attempt_id=attempt.pk, answer=answer, via=Via.STAFF),
                   journals=journals, events=events, is_card=is_card)
        elif succeeded and not attempt.operator_serial:
            attempt.operator_serial = operator_serial
        verdict = VERDICT_SUCCEEDED if succeeded else VERDICT_FAILED
        attempt.needs_review = False
        attempt.review_note = f"已核查（{verdict}）：{reason}"[:200]
        audit = fact(OrderEventKind.TOPUP_REVIEWED, supplier=attempt.supplier.name, outcome=verdict,
                     operator_serial=operator_serial if succeeded else "", reason=reason, staff=staff_name)
        attempt.save(update_fields=OUTCOME_FIELDS)
        order.save(update_fields=ORDER_OUTCOME_FIELDS)
        OrderEvent.objects.bulk_create([OrderEvent(order=order, kind=audit.kind, params=audit.params), *events])
        _journals_post(journals)
    logger.info("top-up %s reviewed by %s: %s (%s)", attempt.customer_order_no, staff_name, verdict, reason)
    if was_settled:
        return (f"已记录核查结论「{verdict}」；该提交此前已是「{attempt.get_status_display()}」，订单（"
                f"{order.get_status_display()}）与资金不再变动，如需与供货商结算差异请另行处理")
    return f"已记录核查结论「{verdict}」，订单现为「{order.get_status_display()}」"
