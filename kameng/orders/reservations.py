"""Bounds on what unpaid orders may hold, and how a paying buyer gets past keys that are only held.

An unpaid card-key order reserves its keys for the payment window (KAMENG_ORDER_PAYMENT_MINUTES). Without bounds
a few fresh accounts could reserve a SKU's whole stock again and again, and every paying buyer would read 售罄.
The design:

1. Per buyer: at most KAMENG_UNPAID_ORDERS_PER_BUYER unpaid orders at once.
2. Per client address: at most KAMENG_UNPAID_ORDERS_PER_ADDRESS unpaid orders at once from one address (fresh
   accounts made from one machine share it).
3. Per SKU: unpaid reservations together may hold at most KAMENG_UNPAID_STOCK_SHARE of the SKU's unsold stock
   (available + reserved keys), and one buyer at most KAMENG_UNPAID_STOCK_SHARE_PER_BUYER of it. An unpaid order
   that would pass either share is refused (409 `unpaid_stock_share`), so paying buyers always find the rest.
4. A buyer paying from the wallet who finds no available key may take over the keys reserved by other buyers'
   unpaid orders whose deadline is past or within KAMENG_UNPAID_TAKEOVER_SECONDS. Those orders stay open; if their
   buyer pays after all, the order is filled from stock then, or (stock gone) refused with nothing charged.

The checks of 1–3 run in the unpaid checkout's transaction under the buyer's lock and the SKU's reservation lock
(kameng.orders.locks), so concurrent unpaid checkouts are counted one after another. Only the unpaid path pays for
them; the wallet checkout never takes these locks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from kameng.core.errors import ConflictError
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.services import card_keys_release
from kameng.orders.locks import buyer_lock, orders_lock_skipping_locked, sku_reservations_lock
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus


class UnpaidOrdersLimitError(ConflictError):
    """The buyer (or the address) already holds as many unpaid orders as allowed."""


def _held(orders: Q, now: datetime) -> int:
    return Order.objects.filter(orders, status=OrderStatus.PENDING_PAYMENT, expires_at__gt=now).count()


def unpaid_reservation_check(*, buyer_id: int, sku_id: int, quantity: int, client_ip: str, holds_keys: bool,
                             now: datetime) -> None:
    """Refuse a new unpaid order past any bound of the module docstring. Runs in the checkout's transaction.

    Orders past their deadline no longer count (the sweeper is about to close them).
    """
    buyer_lock(buyer_id=buyer_id)
    held = _held(Q(buyer_id=buyer_id), now)
    limit = settings.KAMENG_UNPAID_ORDERS_PER_BUYER
    if held >= limit:
        raise UnpaidOrdersLimitError("您有 %(count)s 笔待支付订单，请先支付或取消后再下单", code="unpaid_orders_limit",
                                     extra={"limit": limit}, params={"count": held})
    if client_ip:
        from_address = _held(Q(client_ip=client_ip), now)
        if from_address >= settings.KAMENG_UNPAID_ORDERS_PER_ADDRESS:
            raise UnpaidOrdersLimitError("您所在的网络已有较多待支付订单，请先支付或取消后再下单",
                                         code="unpaid_orders_limit_address",
                                         extra={"limit": settings.KAMENG_UNPAID_ORDERS_PER_ADDRESS})
    if holds_keys:
        _within_stock_share(buyer_id=buyer_id, sku_id=sku_id, quantity=quantity)


def _within_stock_share(*, buyer_id: int, sku_id: int, quantity: int) -> None:
    sku_reservations_lock(sku_id=sku_id)
    now = timezone.now()
    unsold = (CardKey.objects.filter(sku_id=sku_id)
              .filter(Q(status=CardKeyStatus.RESERVED)
                      | Q(status=CardKeyStatus.AVAILABLE) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))))
    reserved = unsold.filter(status=CardKeyStatus.RESERVED)
    total = unsold.count()
    held = reserved.count()
    if quantity > total - held:
        return  # not enough keys for it anyway: the claim says 售罄 (or how many are left)
    held_by_buyer = reserved.filter(order__buyer_id=buyer_id).count() if held else 0
    share = settings.KAMENG_UNPAID_STOCK_SHARE
    per_buyer = settings.KAMENG_UNPAID_STOCK_SHARE_PER_BUYER
    if held + quantity > total * share or held_by_buyer + quantity > total * per_buyer:
        raise ConflictError("该规格待支付订单预留的库存已达上限，请使用余额直接购买，或稍后再试",
                            code="unpaid_stock_share",
                            extra={"share": share, "per_buyer": per_buyer})


def reservations_could_take_over(*, sku_id: int) -> bool:
    """Whether `reservations_take_over` could find anything for some buyer of the SKU now: an unpaid order of it
    past or near its deadline (one indexed look-up; whose it is does not matter here)."""
    cutoff = timezone.now() + timedelta(seconds=settings.KAMENG_UNPAID_TAKEOVER_SECONDS)
    return Order.objects.filter(sku_id=sku_id, status=OrderStatus.PENDING_PAYMENT, expires_at__lte=cutoff).exists()


def reservations_take_over(*, sku_id: int, buyer_id: int, quantity: int) -> bool:
    """Release to stock the keys of other buyers' unpaid orders of this SKU that are past or near their deadline,
    oldest deadline first, until `quantity` keys are free again. Returns whether any were released.

    Runs in the paying checkout's transaction. Orders locked elsewhere (being paid right now) are skipped, so this
    never waits on them and never deadlocks with them.
    """
    cutoff = timezone.now() + timedelta(seconds=settings.KAMENG_UNPAID_TAKEOVER_SECONDS)
    candidates = list(
        Order.objects.filter(sku_id=sku_id, status=OrderStatus.PENDING_PAYMENT, expires_at__lte=cutoff)
        .exclude(buyer_id=buyer_id).order_by("expires_at", "pk").values_list("pk", flat=True)[:quantity]
    )
    if not candidates:
        return False
    released = 0
    for order in orders_lock_skipping_locked(order_ids=candidates):
        if order.status != OrderStatus.PENDING_PAYMENT:
            continue
        count = card_keys_release(order_id=order.pk)
        if count:
            OrderEvent.objects.create(order=order, from_status=order.status, to_status=order.status,
                                      kind=OrderEventKind.RESERVATION_RELEASED, params={})
            released += count
        if released >= quantity:
            break
    return released > 0
