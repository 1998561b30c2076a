"""Writes on orders: checkout, payment from the wallet, expiry, cancellation.

The rows a checkout writes are drafted and written in `checkout.py` (once, for the single path and the group
commit); fulfilment by delivery kind is `fulfilment.py`; the bounds on unpaid orders are `reservations.py`.

Lock order in every path: the order row, then card keys, then the wallet row last (it is the hot one), then commit.
An unpaid checkout locks the buyer's row (and, for card keys, the SKU's row) before anything else; the wallet
checkout never does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from kameng.catalog.models import DeliveryKind
from kameng.catalog.pricing import SALES_CHANNEL_STOREFRONT, PriceQuote, sku_price
from kameng.catalog.selectors import SkuForSale, skus_for_sale
from kameng.catalog.topup_forms import topup_target_loads
from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.core.ids import is_database_id
from kameng.inventory.services import SoldOutError, card_keys_known_sold_out, card_keys_release, decrypt_secrets
from kameng.ledger.selectors import points_balance
from kameng.ledger.services import InsufficientFundsError, journal_draft_post, points_account_id, wallet_account_id
from kameng.orders.checkout import (
    CheckoutDraft,
    Claimed,
    checkout_draft,
    checkout_topup_target,
    checkout_validate,
    drafts_write,
)
from kameng.orders.events import GatewayPayment, fact
from kameng.orders.fulfilment import (
    is_fulfilled_later,
    order_fulfil,
    order_fulfil_paid,
    order_fulfilment_enqueue,
    order_payment_journal,
    orders_redrive_stuck,
)
from kameng.orders.locks import order_lock
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.reservations import UnpaidOrdersLimitError, unpaid_reservation_check
from kameng.orders.state import KEYS_VISIBLE, transition

logger = logging.getLogger(__name__)
REQUEST_ID_MAX = 64
# The shape bound of every quantity input (API schema, buy form): it keeps price × quantity a sane number before
# the rules see it. The real bound is the product's, and KAMENG_MAX_ORDER_QUANTITY.
QUANTITY_INPUT_MAX = 10_000
# Refusals of an unpaid checkout by the bounds of reservations.py: a replay of an order already made is answered
# with that order instead.
RESERVATION_REFUSALS = frozenset({"unpaid_orders_limit", "unpaid_orders_limit_address", "unpaid_stock_share"})

__all__ = ["UnpaidOrdersLimitError", "order_fulfil", "orders_redrive_stuck"]


@dataclass
class CheckoutResult:
    order: Order
    created: bool
    secrets: list[str] = field(default_factory=list)


def _validate_request_id(request_id: str | None) -> str | None:
    if request_id is None or request_id == "":
        return None
    if len(request_id) > REQUEST_ID_MAX or not request_id.isprintable():
        raise ApplicationError("request_id 最长 %(max)s 个可见字符", code="invalid_request_id",
                               params={"max": REQUEST_ID_MAX})
    return request_id


def order_checkout(*, buyer_id: int, sku_id: int, quantity: int, request_id: str | None = None,
                   pay_with_wallet: bool = True, sales_channel: str = SALES_CHANNEL_STOREFRONT,
                   client_ip: str = "", batched: bool = False, points: int = 0,
                   topup_target: Mapping[str, str] | None = None) -> CheckoutResult:
    """Create an order for one SKU × quantity; with `pay_with_wallet`, pay it in the same transaction (card keys
    are delivered at once; other kinds are fulfilled after commit, their money held until then).

    Idempotent by (buyer, request_id): a repeated request returns the first order (`created=False`) and charges
    nothing; the same request id with another SKU or quantity is not a repeat but a mistake (`request_id_reused`).
    A card-key order either gets all its keys or nothing happens (`SoldOutError`); a wallet short of the total
    raises `InsufficientFundsError` and nothing happens. Without `pay_with_wallet` the keys are reserved and the
    order waits for payment until `expires_at`, within the bounds of `reservations.py`.

    `batched` sends a wallet checkout to the group commit (PostgreSQL, when enabled: one transaction for the
    checkouts in flight together, `group_commit.py`); the caller must not be inside a transaction, since the
    writer commits on its own connection. Whatever a batch cannot settle comes back to this single path.

    `points` offsets cash with up to that many of the buyer's points (kameng.catalog.pricing): such a checkout is
    paid from the wallet on this single path, never batched; the points are debited in the same transaction as a
    journal of their own. A buyer short of the points used is refused (`insufficient_points`, 400) before anything
    is written, and again by the ledger's guard if they were spent in between.

    `topup_target` is the buyer's input of a direct top-up, already cleaned against the product's form
    (kameng.catalog.topup_forms, by the purchase service): stored encrypted on the order in the same transaction. A
    direct top-up without it is refused (the form's first required field named), and so is one given for another
    delivery kind. Such a checkout is never batched. A replay must carry the same target.
    """
    request_id = _validate_request_id(request_id)
    if not is_database_id(sku_id):  # names no SKU; found out here, not by a query (or a whole batch) failing
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    order_sold_out_known_check(buyer_id=buyer_id, sku_id=sku_id, request_id=request_id)
    if batched and pay_with_wallet and not points and topup_target is None:
        from kameng.orders.group_commit import checkout_grouped, group_commit_enabled

        if group_commit_enabled():
            grouped = checkout_grouped(buyer_id=buyer_id, sku_id=sku_id, quantity=quantity, request_id=request_id,
                                       sales_channel=sales_channel, client_ip=client_ip)
            if grouped is not None:
                return grouped
            # The batch left this one to the single path: it gives the exact answer (replay, sold out, error) —
            # unless a loser of the same batch has found the SKU sold out meanwhile.
            order_sold_out_known_check(buyer_id=buyer_id, sku_id=sku_id, request_id=request_id)
    sku = skus_for_sale(sku_ids=[sku_id]).get(sku_id)
    if sku is None:
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    target_text = checkout_topup_target(sku, topup_target)
    quote = sku_price(sku=sku, buyer_id=buyer_id, quantity=quantity, sales_channel=sales_channel, points=points)
    checkout_validate(sku, quantity, quote, sales_channel=sales_channel)
    if quote.points_redeemed and (replay := _points_short(buyer_id, request_id, sku_id, quantity, quote,
                                                          topup_target=topup_target)):
        return replay
    now = timezone.now()
    wallet_id = wallet_account_id(user_id=buyer_id) if pay_with_wallet else None
    written = _single_write(sku=sku, quote=quote, buyer_id=buyer_id, request_id=request_id, wallet_id=wallet_id,
                            client_ip=client_ip, now=now, target_text=target_text, sales_channel=sales_channel)
    if isinstance(written, Order):  # the request id was used before: its first order answers
        return _replayed(written, sku_id=sku_id, quantity=quantity, topup_target=topup_target)
    draft, orders, claimed = written
    if not orders:  # the request id was taken (PostgreSQL skips the row rather than failing the INSERT)
        existing = _existing_for_request(buyer_id, request_id)
        if existing is None:
            raise ConflictError("订单未生成，请重试", code="checkout_conflict")
        return _replayed(existing, sku_id=sku_id, quantity=quantity, topup_target=topup_target)
    ciphertexts = [token for _, token in claimed.get(draft.order.pk, [])] if draft.sell else []
    return CheckoutResult(order=draft.order, created=True, secrets=decrypt_secrets(ciphertexts))


class InsufficientPointsError(ApplicationError):
    pass


def points_available_check(*, buyer_id: int, points: int) -> None:
    """Refuse, before any write, a buyer who has fewer points than `points`."""
    available = points_balance(user_id=buyer_id)
    if available < points:
        raise InsufficientPointsError("积分不足：需要 %(needed)s 积分，当前可用 %(available)s 积分",
                                      code="insufficient_points",
                                      extra={"needed": points, "available": available},
                                      params={"needed": points, "available": available})


def _points_short(buyer_id: int, request_id: str | None, sku_id: int, quantity: int, quote: PriceQuote,
                  *, topup_target: Mapping[str, str] | None) -> CheckoutResult | None:
    """Refuse a buyer short of the quote's points, unless the points went on this very request's order (a replay:
    its answer is returned)."""
    try:
        points_available_check(buyer_id=buyer_id, points=quote.points_redeemed)
    except InsufficientPointsError:
        existing = _existing_for_request(buyer_id, request_id)
        if existing is None:
            raise
        return _replayed(existing, sku_id=sku_id, quantity=quantity, topup_target=topup_target)
    return None


def _drafts_write_points_checked(draft: CheckoutDraft, now: datetime) -> tuple[list[CheckoutDraft], Claimed]:
    """Write one draft; the points spent elsewhere since the check answer as that check would."""
    if draft.points_journal is None:
        return drafts_write([draft], now)
    points_account = points_account_id(user_id=draft.order.buyer_id)
    try:
        return drafts_write([draft], now)
    except InsufficientFundsError as error:
        short = set(error.extra.get("account_ids", [])) | {error.extra.get("account_id")}
        if points_account in short:
            raise InsufficientPointsError("积分不足，请刷新后重试", code="insufficient_points") from error
        raise


def order_sold_out_known_check(*, buyer_id: int, sku_id: int, request_id: str | None) -> None:
    """Raise SoldOutError without a transaction when a claim in this process just found the SKU without keys
    (kameng.inventory.services.card_keys_known_sold_out: at most a second ago, or until keys come back). A replay
    goes on (it gets its own order back); asking costs one plain query, and only when the SKU is marked. A caller
    that has just found no order under its request id passes request_id=None: nothing to look for."""
    if not card_keys_known_sold_out(sku_id=sku_id):
        return
    if request_id is not None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {connection.ops.quote_name(Order._meta.db_table)} "  # noqa: S608 - our own table name
                           "WHERE buyer_id = %s AND request_id = %s", [buyer_id, request_id])
            if cursor.fetchone() is not None:
                return
    raise SoldOutError("已售罄", code="sold_out", extra={"available": 0})


def _single_write(*, sku: SkuForSale, quote: PriceQuote, buyer_id: int, request_id: str | None,
                  wallet_id: int | None, client_ip: str, now: datetime, target_text: str | None,
                  sales_channel: str) -> Order | tuple[CheckoutDraft, list[CheckoutDraft], Claimed]:
    """The single path's transaction: the draft, what was written and the keys claimed — or the order a replayed
    request id already has. An order number another order drew meanwhile is drawn again (NUMBER_ATTEMPTS)."""
    for attempt in range(NUMBER_ATTEMPTS):
        draft = checkout_draft(sku=sku, quote=quote, buyer_id=buyer_id, request_id=request_id, wallet_id=wallet_id,
                               client_ip=client_ip, now=now, topup_target=target_text, sales_channel=sales_channel)
        try:
            with transaction.atomic():
                if wallet_id is None:
                    unpaid_reservation_check(buyer_id=buyer_id, sku_id=sku.sku_id, quantity=quote.quantity,
                                             client_ip=client_ip, holds_keys=sku.delivery_kind == DeliveryKind.CARD_KEY,
                                             now=now)
                written, claimed = _drafts_write_points_checked(draft, now)
        except (IntegrityError, ConflictError) as error:
            if isinstance(error, ConflictError) and error.code not in RESERVATION_REFUSALS:
                raise
            existing = _existing_for_request(buyer_id, request_id)  # a replay is answered, even at a limit
            if existing is not None:
                return existing
            if (isinstance(error, IntegrityError) and attempt + 1 < NUMBER_ATTEMPTS
                    and Order.objects.filter(number=draft.order.number).exists()):
                continue  # rolled back; drafted again with a new number
            raise
        return draft, written, claimed
    raise AssertionError("unreachable: the last attempt returns or raises")


# An order number is the millisecond and 6 random digits (kameng.core.ids.public_number): two orders drawing the same
# one is rare, and the unique constraint refuses the second; it is drafted again with a new number this many times.
NUMBER_ATTEMPTS = 3


def _existing_for_request(buyer_id: int, request_id: str | None) -> Order | None:
    if request_id is None:
        return None
    return Order.objects.filter(buyer_id=buyer_id, request_id=request_id).first()


def _replayed(existing: Order, *, sku_id: int, quantity: int,
              topup_target: Mapping[str, str] | None = None) -> CheckoutResult:
    """The answer to a request id already used: the first order, if this is the same request again (the same SKU,
    quantity and, for a direct top-up, target).

    The group commit leaves replays to the single path, so this one check serves both.
    """
    if existing.sku_id != sku_id or existing.quantity != quantity:
        raise ConflictError("该 request_id 已用于另一笔订单（规格或数量不同）", code="request_id_reused",
                            extra={"number": existing.number})
    if topup_target_loads(existing.topup_target) != dict(topup_target or {}):
        raise ConflictError("该 request_id 已用于另一笔订单（充值信息不同）", code="request_id_reused",
                            extra={"number": existing.number})
    return CheckoutResult(order=existing, created=False, secrets=_delivered_secrets(existing))


def _delivered_secrets(order: Order) -> list[str]:
    from kameng.inventory.selectors import secrets_for_order

    return secrets_for_order(order_id=order.pk) if order.status in KEYS_VISIBLE else []


def order_pay_with_wallet(*, order_id: int, buyer_id: int, gateway_payment: GatewayPayment | None = None,
                          honour_after_deadline: bool = False) -> Order:
    """Pay a pending order from the buyer's wallet and fulfil it by its delivery kind, in one transaction (card
    keys: its reserved keys are delivered; other kinds: the money is held and fulfilment runs after commit).

    A gateway payment lands in the wallet first and then pays the order through here (`gateway_payment` names it
    on the timeline); `honour_after_deadline` accepts it while the order is still open (the buyer paid in time, the
    notification came late) as long as the expiry job has not closed it and released its keys.
    """
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
        delivery_kind = str(order.sku.product.delivery_kind)
        paid = gateway_payment.paid() if gateway_payment is not None else fact(OrderEventKind.WALLET_PAID)
        events = [transition(order, OrderStatus.PAID, said=paid)]
        order.paid_at = timezone.now()
        if is_fulfilled_later(delivery_kind):
            transaction.on_commit(lambda: order_fulfilment_enqueue(order_id=order_id))
        else:
            events += order_fulfil_paid(order)
            if order.status == OrderStatus.DELIVERY_FAILED:
                raise ConflictError("库存不足，无法发货，未扣款", code="sold_out")  # rolls the sale back
        order.save(update_fields=["status", "paid_at", "delivered_at", "updated_at"])
        OrderEvent.objects.bulk_create(events)
        journal_draft_post(draft=order_payment_journal(order, delivery_kind=delivery_kind))
    return order


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


