"""Writes on orders: checkout, payment from the wallet, fulfilment, expiry, cancellation, refund of failures.

Lock order in every path: the order row, then card keys, then the wallet row last (it is the hot one), then commit.
An unpaid checkout locks the buyer's row before anything else (and only it: the wallet checkout never does).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from kameng.catalog.models import DeliveryKind, Product, ProductStatus, Sku
from kameng.catalog.selectors import sku_for_sale
from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.core.ids import is_database_id, public_number
from kameng.core.money import money
from kameng.inventory.services import (
    card_keys_claim,
    card_keys_release,
    card_keys_return_undelivered,
    card_keys_sell_reserved,
    decrypt_secrets,
)
from kameng.ledger.models import AccountKind, JournalKind
from kameng.ledger.services import credit, debit, journal_post, system_account_id, wallet_account_id
from kameng.orders.events import GatewayPayment, fact
from kameng.orders.locks import buyer_lock, order_lock
from kameng.orders.models import ORDER_TOTAL_MAX, Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.state import KEYS_VISIBLE, created_event, transition

logger = logging.getLogger(__name__)
REQUEST_ID_MAX = 64
# The shape bound of every quantity input (API schema, buy form): it keeps price × quantity a sane number before
# the rules see it. The real bound is the product's, and KAMENG_MAX_ORDER_QUANTITY.
QUANTITY_INPUT_MAX = 10_000


class UnpaidOrdersLimitError(ConflictError):
    """The buyer already holds as many unpaid orders (keys reserved, waiting for payment) as one buyer may."""


@dataclass
class CheckoutResult:
    order: Order
    created: bool
    secrets: list[str] = field(default_factory=list)


def _validate_quantity(sku: Sku, quantity: int) -> None:
    product = sku.product
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise ApplicationError("购买数量必须是整数", code="invalid_quantity")
    upper = min(product.max_quantity, settings.KAMENG_MAX_ORDER_QUANTITY)
    if quantity < product.min_quantity or quantity > upper:
        raise ApplicationError("购买数量需在 %(min)s–%(max)s 之间", code="invalid_quantity",
                               extra={"min": product.min_quantity, "max": upper},
                               params={"min": product.min_quantity, "max": upper})


def _validate_request_id(request_id: str | None) -> str | None:
    if request_id is None or request_id == "":
        return None
    if len(request_id) > REQUEST_ID_MAX or not request_id.isprintable():
        raise ApplicationError("request_id 最长 %(max)s 个可见字符", code="invalid_request_id",
                               params={"max": REQUEST_ID_MAX})
    return request_id


def order_checkout(*, buyer_id: int, sku_id: int, quantity: int, request_id: str | None = None,
                   pay_with_wallet: bool = True) -> CheckoutResult:
    """Create an order for one SKU × quantity; with `pay_with_wallet`, pay and deliver it in the same transaction.

    Idempotent by (buyer, request_id): a repeated request returns the first order (`created=False`) and charges
    nothing; the same request id with another SKU or quantity is not a repeat but a mistake (`request_id_reused`).
    A card-key order either gets all its keys or nothing happens (`SoldOutError`); a wallet short of the total
    raises `InsufficientFundsError` and nothing happens. Without `pay_with_wallet` the keys are reserved and the
    order waits for payment until `expires_at`.

    On PostgreSQL a wallet checkout outside any transaction goes through the group commit (one transaction for
    the checkouts in flight together, `group_commit.py`); whatever a batch cannot settle comes back here.
    """
    request_id = _validate_request_id(request_id)
    if not is_database_id(sku_id):  # names no SKU; found out here, not by a query (or a whole batch) failing
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    if pay_with_wallet and not connection.in_atomic_block:
        from kameng.orders.group_commit import checkout_grouped, group_commit_enabled

        if group_commit_enabled():
            grouped = checkout_grouped(buyer_id=buyer_id, sku_id=sku_id, quantity=quantity, request_id=request_id)
            if grouped is not None:
                return grouped
            # The batch left this one to the single path: it gives the exact answer (replay, sold out, error).
    sku = _sku_for_checkout(sku_id)
    if sku is None:
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    checkout_validate(sku, quantity)
    now = timezone.now()
    order, events = checkout_draft(sku, buyer_id=buyer_id, quantity=quantity, request_id=request_id, now=now,
                                   paid=pay_with_wallet)
    wallet_id = wallet_account_id(user_id=buyer_id) if pay_with_wallet else None
    try:
        with transaction.atomic():
            if wallet_id is None:
                _unpaid_orders_within_limit(buyer_id, now)
            _order_insert(order, now)
            claimed = card_keys_claim(sku_id=sku.pk, order_id=order.pk, quantity=quantity, sell=pay_with_wallet)
            _events_insert(events, now)
            if wallet_id is not None:
                _post_payment(order, wallet_id)
    except (IntegrityError, UnpaidOrdersLimitError):
        existing = _existing_for_request(buyer_id, request_id)  # a replay is answered, even at the limit
        if existing is None:
            raise
        return _replayed(existing, sku_id=sku_id, quantity=quantity)
    secrets = decrypt_secrets([token for _, token in claimed]) if pay_with_wallet else []
    return CheckoutResult(order=order, created=True, secrets=secrets)


def _unpaid_orders_within_limit(buyer_id: int, now: datetime) -> None:
    """Refuse a new unpaid order to a buyer already holding KAMENG_UNPAID_ORDERS_PER_BUYER of them: each holds its
    keys for the payment window, so without a cap one buyer could keep a SKU's whole stock off sale, again and again.

    Runs in the checkout's transaction, under the buyer's lock, so concurrent unpaid checkouts of one buyer cannot
    all see room for one more. Orders past their deadline no longer count (the sweeper is about to close them).
    """
    buyer_lock(buyer_id=buyer_id)
    held = Order.objects.filter(buyer_id=buyer_id, status=OrderStatus.PENDING_PAYMENT, expires_at__gt=now).count()
    limit = settings.KAMENG_UNPAID_ORDERS_PER_BUYER
    if held >= limit:
        raise UnpaidOrdersLimitError("您有 %(count)s 笔待支付订单，请先支付或取消后再下单", code="unpaid_orders_limit",
                                     extra={"limit": limit}, params={"count": held})


def checkout_validate(sku: Sku, quantity: int) -> None:
    """Raise the buyer-facing error when this SKU cannot be checked out in this quantity."""
    if sku.product.delivery_kind != DeliveryKind.CARD_KEY:
        raise ApplicationError("该商品暂不支持在线购买", code="delivery_kind_unsupported")
    _validate_quantity(sku, quantity)
    if sku.price * quantity > ORDER_TOTAL_MAX:
        most = int(ORDER_TOTAL_MAX // sku.price)
        raise ApplicationError("订单金额不能超过 ¥%(amount)s，该规格每单最多 %(max)s 件", code="order_total_too_large",
                               extra={"max": most}, params={"amount": ORDER_TOTAL_MAX, "max": most})


def checkout_draft(sku: Sku, *, buyer_id: int, quantity: int, request_id: str | None, now: datetime,
                   paid: bool) -> tuple[Order, list[OrderEvent]]:
    """The unsaved order and its timeline; `paid` writes it in its final state (delivered) at once, because the
    whole wallet checkout commits or nothing does."""
    order = _new_order(sku, buyer_id=buyer_id, quantity=quantity, request_id=request_id, now=now)
    events = [created_event(order)]
    if paid:
        events.append(transition(order, OrderStatus.PAID, said=fact(OrderEventKind.WALLET_PAID)))
        events.append(transition(order, OrderStatus.DELIVERED))
        _paid_and_delivered_at(order, now)
    return order, events


def _paid_and_delivered_at(order: Order, now: datetime) -> None:
    order.paid_at = order.delivered_at = now
    order.expires_at = None


# (from_status, to_status, kind, params) of each event, in order.
Timeline = list[tuple[str, str, str, dict[str, Any]]]


def paid_checkout_drafts(lines: Sequence[tuple[Sku, int, int, str | None]], now: datetime,
                         ) -> tuple[list[Order], Timeline]:
    """Many wallet-paid orders at once (group commit), from (SKU, buyer id, quantity, request id) lines: each order
    as `checkout_draft` makes it, and the one timeline they all share — every such order passes through the same
    transitions, so they are checked once rather than per order."""
    orders: list[Order] = []
    numbers: set[str] = set()
    timeline: Timeline = []
    for sku, buyer_id, quantity, request_id in lines:
        if not orders:
            order, events = checkout_draft(sku, buyer_id=buyer_id, quantity=quantity, request_id=request_id, now=now,
                                           paid=True)
            timeline = [(str(event.from_status), str(event.to_status), str(event.kind), event.params)
                        for event in events]
        else:
            order = _new_order(sku, buyer_id=buyer_id, quantity=quantity, request_id=request_id, now=now)
            order.status = orders[0].status
            _paid_and_delivered_at(order, now)
        while order.number in numbers:  # same millisecond, same 6 random digits: rare, but one batch shares it
            order.number = public_number("K")
        numbers.add(order.number)
        orders.append(order)
    return orders, timeline


def _new_order(sku: Sku, *, buyer_id: int, quantity: int, request_id: str | None, now: datetime) -> Order:
    return Order(
        number=public_number("K"), buyer_id=buyer_id, sku_id=sku.pk, title=f"{sku.product.name} {sku.name}",
        quantity=quantity, unit_price=sku.price, total_amount=money(sku.price * quantity),
        request_id=request_id, expires_at=now + timedelta(minutes=settings.KAMENG_ORDER_PAYMENT_MINUTES),
    )


def order_payment_memo(order: Order) -> str:
    return f"购买 {order.title} × {order.quantity}"


_SKUS_FOR_CHECKOUT_SQL = """
SELECT s.id, s.name, s.price, p.id, p.name, p.delivery_kind, p.min_quantity, p.max_quantity
FROM catalog_sku s JOIN catalog_product p ON p.id = s.product_id
WHERE s.id = ANY(%s::bigint[]) AND s.is_active AND p.status = %s
"""


def _sku_for_checkout(sku_id: int) -> Sku | None:
    """`sku_for_sale`, minus the ORM's query building: on PostgreSQL the same filter in one plain SELECT.

    Building that query through the ORM cost about as much CPU as the whole key claim; every order pays it.
    """
    if connection.vendor != "postgresql":
        return sku_for_sale(sku_id=sku_id)
    return skus_for_checkout([sku_id]).get(sku_id)


def skus_for_checkout(sku_ids: list[int]) -> dict[int, Sku]:
    """PostgreSQL: the SKUs on sale among `sku_ids`, each with its product (the fields a checkout reads).

    An id outside bigint names no SKU: it is left out, since `::bigint[]` would fail the query for all the others.
    """
    sku_ids = [sku_id for sku_id in sku_ids if is_database_id(sku_id)]
    with connection.cursor() as cursor:
        cursor.execute(_SKUS_FOR_CHECKOUT_SQL, [sku_ids, ProductStatus.ON_SALE])
        rows = cursor.fetchall()
    skus = {}
    for pk, name, price, product_id, product_name, delivery_kind, min_quantity, max_quantity in rows:
        product = Product(id=product_id, name=product_name, delivery_kind=delivery_kind,
                          status=ProductStatus.ON_SALE, min_quantity=min_quantity, max_quantity=max_quantity)
        skus[pk] = Sku(id=pk, product=product, name=name, price=price, is_active=True)
    return skus


_ORDER_INSERT_SQL = """
INSERT INTO orders_order (number, buyer_id, sku_id, title, quantity, unit_price, total_amount, status, request_id,
                          created_at, expires_at, paid_at, delivered_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id
"""


def _order_insert(order: Order, now: datetime) -> None:
    """`order.save(force_insert=True)`; on PostgreSQL as one plain INSERT…RETURNING (the ORM's insert machinery
    costs several times the round trip itself, on every order)."""
    if connection.vendor != "postgresql":
        order.save(force_insert=True)
        return
    with connection.cursor() as cursor:
        cursor.execute(_ORDER_INSERT_SQL, [
            order.number, order.buyer_id, order.sku_id, order.title, order.quantity, order.unit_price,
            order.total_amount, str(order.status), order.request_id, now, order.expires_at, order.paid_at,
            order.delivered_at, now])
        order_inserted(order, pk=cursor.fetchone()[0], now=now)


def order_inserted(order: Order, *, pk: int, now: datetime) -> None:
    """Make the instance what `save()` would have left after a plain-SQL INSERT that stamped it `now`."""
    order.pk = pk
    order.created_at = order.updated_at = now
    order._state.adding = False
    order._state.db = connection.alias


def _events_insert(events: list[OrderEvent], now: datetime) -> None:
    """`OrderEvent.objects.bulk_create(events)`; on PostgreSQL as one plain multi-row INSERT."""
    if connection.vendor != "postgresql":
        OrderEvent.objects.bulk_create(events)
        return
    rows = ", ".join(["(%s, %s, %s, %s, %s::jsonb, %s)"] * len(events))
    params: list[Any] = []
    for event in events:
        event.created_at = now
        params += [event.order.pk, str(event.from_status), str(event.to_status), str(event.kind),
                   json.dumps(event.params), now]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO orders_orderevent (order_id, from_status, to_status, kind, params, created_at) "
            "VALUES " + rows,  # only placeholders are joined in: every value is a parameter
            params)


def _existing_for_request(buyer_id: int, request_id: str | None) -> Order | None:
    if request_id is None:
        return None
    return Order.objects.filter(buyer_id=buyer_id, request_id=request_id).first()


def _replayed(existing: Order, *, sku_id: int, quantity: int) -> CheckoutResult:
    """The answer to a request id already used: the first order, if this is the same request again.

    The group commit leaves replays to the single path, so this one check serves both.
    """
    if existing.sku_id != sku_id or existing.quantity != quantity:
        raise ConflictError("该 request_id 已用于另一笔订单（规格或数量不同）", code="request_id_reused",
                            extra={"number": existing.number})
    return CheckoutResult(order=existing, created=False, secrets=_delivered_secrets(existing))


def _delivered_secrets(order: Order) -> list[str]:
    from kameng.inventory.selectors import secrets_for_order

    return secrets_for_order(order_id=order.pk) if order.status in KEYS_VISIBLE else []


def _post_payment(order: Order, wallet_id: int) -> None:
    journal_post(
        kind=JournalKind.ORDER_PAYMENT, reference=order.number, memo=order_payment_memo(order),
        legs=[debit(wallet_id, order.total_amount),
              credit(system_account_id(kind=AccountKind.PLATFORM_REVENUE), order.total_amount)],
    )


def order_pay_with_wallet(*, order_id: int, buyer_id: int, gateway_payment: GatewayPayment | None = None,
                          honour_after_deadline: bool = False) -> Order:
    """Pay a pending order from the buyer's wallet and deliver its reserved keys, in one transaction.

    A gateway payment lands in the wallet first and then pays the order through here (`gateway_payment` names it
    on the timeline); `honour_after_deadline` accepts it while the order is still open (the buyer paid in time, the
    notification came late) as long as the expiry job has not closed it and released its keys.
    """
    wallet_id = wallet_account_id(user_id=buyer_id)
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order.buyer_id != buyer_id:
            raise NotFoundError("订单不存在", code="order_not_found")
        if order.status != OrderStatus.PENDING_PAYMENT:
            raise ConflictError("订单当前状态为「%(status)s」，无需支付", code="not_payable",
                                params={"status": order.get_status_display()})
        deadline_passed = order.expires_at is not None and order.expires_at <= timezone.now()
        if deadline_passed and not honour_after_deadline:
            raise ConflictError("订单已超时关闭，请重新下单", code="order_expired")
        paid = gateway_payment.paid() if gateway_payment is not None else fact(OrderEventKind.WALLET_PAID)
        events = [transition(order, OrderStatus.PAID, said=paid)]
        order.paid_at = timezone.now()
        events += _fulfil_card_keys(order)
        if order.status == OrderStatus.DELIVERY_FAILED:
            raise ConflictError("库存不足，无法发货，未扣款", code="sold_out")  # rolls the sale back
        order.save(update_fields=["status", "paid_at", "delivered_at", "updated_at"])
        OrderEvent.objects.bulk_create(events)
        _post_payment(order, wallet_id)
    return order


def _fulfil_card_keys(order: Order) -> list[OrderEvent]:
    """Deliver a paid order from its reserved keys, topping up from stock if some were withdrawn."""
    sold = card_keys_sell_reserved(order_id=order.pk)
    if sold < order.quantity:
        from kameng.inventory.services import SoldOutError

        try:
            with transaction.atomic():
                card_keys_claim(sku_id=order.sku_id, order_id=order.pk, quantity=order.quantity - sold, sell=True)
        except SoldOutError:
            return [transition(order, OrderStatus.DELIVERY_FAILED, said=fact(OrderEventKind.OUT_OF_STOCK))]
    order.delivered_at = timezone.now()
    return [transition(order, OrderStatus.DELIVERED)]


def order_fulfil(*, order_id: int) -> Order:
    """Deliver a paid order (re-driven by the sweeper); on failure refund it to the wallet. Idempotent."""
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order.status not in (OrderStatus.PAID, OrderStatus.FULFILLING):
            return order
        events = _fulfil_card_keys(order)
        if order.status == OrderStatus.DELIVERY_FAILED:
            events += _refund_failed_delivery(order)
        order.save(update_fields=["status", "delivered_at", "refunded_amount", "updated_at"])
        OrderEvent.objects.bulk_create(events)
    return order


def _refund_failed_delivery(order: Order) -> list[OrderEvent]:
    card_keys_return_undelivered(order_id=order.pk)
    journal_post(
        kind=JournalKind.ORDER_REFUND, reference=order.number, memo=f"发货失败退款 {order.title}",
        legs=[debit(system_account_id(kind=AccountKind.PLATFORM_REVENUE), order.total_amount),
              credit(wallet_account_id(user_id=order.buyer_id), order.total_amount)],
    )
    order.refunded_amount = order.total_amount
    return [transition(order, OrderStatus.REFUNDED,
                       said=fact(OrderEventKind.DELIVERY_FAILED_REFUNDED, amount=order.total_amount))]


def order_cancel(*, order_id: int, buyer_id: int) -> Order:
    """The buyer cancels an unpaid order; its reserved keys go back to stock."""
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order.buyer_id != buyer_id:
            raise NotFoundError("订单不存在", code="order_not_found")
        if order.status != OrderStatus.PENDING_PAYMENT:
            raise ConflictError("订单当前状态为「%(status)s」，不能取消", code="not_cancellable",
                                params={"status": order.get_status_display()})
        event = transition(order, OrderStatus.CANCELLED)
        card_keys_release(order_id=order.pk)
        order.save(update_fields=["status", "updated_at"])
        event.save()
    return order


def order_expire(*, order_id: int) -> bool:
    """Close an unpaid order whose payment time is up and release its keys. Returns whether it expired."""
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order.status != OrderStatus.PENDING_PAYMENT or order.expires_at is None or order.expires_at > timezone.now():
            return False
        event = transition(order, OrderStatus.EXPIRED)
        card_keys_release(order_id=order.pk)
        order.save(update_fields=["status", "updated_at"])
        event.save()
    return True


def orders_expire_due(*, limit: int = 500) -> int:
    """Expire every unpaid order past its deadline (the periodic job). Returns how many expired."""
    due = list(
        Order.objects.filter(status=OrderStatus.PENDING_PAYMENT, expires_at__lte=timezone.now())
        .order_by("expires_at").values_list("pk", flat=True)[:limit]
    )
    return sum(1 for order_id in due if order_expire(order_id=order_id))


def orders_redrive_stuck(*, older_than_seconds: int | None = None, limit: int = 200) -> int:
    """Re-drive orders paid but not delivered for too long (a crash, a lost task). Returns how many it touched."""
    age = older_than_seconds if older_than_seconds is not None else settings.KAMENG_SWEEP_STUCK_AFTER_SECONDS
    stuck = list(
        Order.objects.filter(status__in=[OrderStatus.PAID, OrderStatus.FULFILLING],
                             updated_at__lte=timezone.now() - timedelta(seconds=age))
        .order_by("pk").values_list("pk", flat=True)[:limit]
    )
    for order_id in stuck:
        try:
            order_fulfil(order_id=order_id)
        except Exception:  # one broken order must not stop the sweep of the others
            logger.exception("re-driving order %s failed", order_id)
    return len(stuck)
