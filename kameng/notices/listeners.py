"""The delivery e-mail: an aftercare listener (kameng.orders.aftercare) that tells the buyer, at the address they
confirmed on their account page, that an order was delivered — product, quantity and a link to the order page.

The card secrets stay on the order page unless KAMENG_EMAIL_INCLUDE_KEYS is on: an e-mail is copied to servers
and devices the platform does not control. A manual order's delivery note (it may hold account details of a
代充) is never put in the e-mail either; the e-mail says it is on the order page.

At most once per order: an `OrderNotice` row (unique per order and kind) is committed before the mail server is
called, so a second run of the listener — aftercare is delivered at least once — finds it and sends nothing. A
send that raises deletes the row and fails the run, so the task's retry sends it again; a process that dies while
sending leaves the row claimed and the e-mail is not sent again (the order page stays the buyer's record). Nothing
here runs inside a transaction while the mail server is called.

Aftercare is enqueued after commit; a broker down at that moment loses the task. `delivered_emails_redrive` (a
periodic task) sends what the newest orders still lack, once their delivery is a few minutes old.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from kameng.inventory.selectors import secrets_for_order
from kameng.notices.mail import email_build, order_link
from kameng.notices.models import NoticeLanguage, OrderNotice, OrderNoticeKind, OrderNoticeStatus
from kameng.orders.aftercare import AftercareEvent, aftercare_orders
from kameng.orders.models import Order

REDRIVE_SETTLE_SECONDS = 600  # the aftercare task and its first retries have had their turn
REDRIVE_WITHIN_HOURS = 24
# Only the newest orders are looked at (a range of the primary key, so the sweep reads an index and not the
# whole table): a manual order delivered after this many newer orders were placed is not swept.
REDRIVE_NEWEST_ORDERS = 5000

logger = logging.getLogger(__name__)


def orders_delivered_email(*, order_ids: list[int], event: str) -> None:
    """Aftercare listener: one delivery e-mail per delivered order whose buyer has an address, at most once."""
    if event != AftercareEvent.DELIVERED:
        return
    # The run's shared read says which orders are delivered to a buyer with an address (most buyers of a busy
    # shop have none): only those are loaded, and a batch without any costs no query of its own.
    wanted = [order.id for order in aftercare_orders(order_ids).values()
              if order.delivered_at is not None and order.buyer_email]
    if not wanted:
        return
    orders = list(
        Order.objects.filter(pk__in=wanted, delivered_at__isnull=False)
        .exclude(buyer__email="").select_related("buyer").order_by("pk"))
    failed: Exception | None = None
    for order in orders:
        try:
            order_delivered_email_send(order=order)
        except Exception as error:  # one address refused must not keep the others from their e-mail
            logger.exception("delivery e-mail of order %s failed", order.number)
            failed = error
    if failed is not None:
        raise failed


def order_delivered_email_send(*, order: Order) -> bool:
    """Send the delivery e-mail of one delivered order unless it was sent (or is being sent); True if sent now."""
    address = order.buyer.email
    if not address:
        return False
    language = NoticeLanguage.objects.filter(user_id=order.buyer_id).values_list("language", flat=True).first()
    include_keys = settings.KAMENG_EMAIL_INCLUDE_KEYS
    message = email_build(to=address, template="order_delivered", language=language, context={
        "order": order, "link": order_link(order.number), "has_note": bool(order.delivery_note),
        "include_keys": include_keys, "secrets": secrets_for_order(order_id=order.pk) if include_keys else [],
    })
    try:
        with transaction.atomic():
            notice = OrderNotice.objects.create(order=order, kind=OrderNoticeKind.DELIVERED)
    except IntegrityError:
        return False  # sent already, or another run is sending it
    try:
        message.send()
    except Exception:
        OrderNotice.objects.filter(pk=notice.pk).delete()  # give the claim back: the retry sends it
        raise
    OrderNotice.objects.filter(pk=notice.pk).update(status=OrderNoticeStatus.SENT, sent_at=timezone.now())
    logger.info("delivery e-mail of order %s sent", order.number)
    return True


def delivered_emails_redrive(*, limit: int = 200) -> int:
    """Send the delivery e-mail of recently delivered orders that have none (their aftercare task was lost);
    returns how many orders it tried."""
    newest = Order.objects.order_by("-pk").values_list("pk", flat=True).first()
    if newest is None:
        return 0
    now = timezone.now()
    order_ids = list(
        Order.objects.filter(pk__gt=newest - REDRIVE_NEWEST_ORDERS,
                             delivered_at__gte=now - timedelta(hours=REDRIVE_WITHIN_HOURS),
                             delivered_at__lte=now - timedelta(seconds=REDRIVE_SETTLE_SECONDS))
        .exclude(buyer__email="")
        .exclude(Exists(OrderNotice.objects.filter(order_id=OuterRef("pk"), kind=OrderNoticeKind.DELIVERED)))
        .order_by("pk").values_list("pk", flat=True)[:limit])
    if order_ids:
        orders_delivered_email(order_ids=order_ids, event=AftercareEvent.DELIVERED)
    return len(order_ids)
