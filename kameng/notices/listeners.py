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
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from kameng.inventory.selectors import secrets_for_order
from kameng.notices.mail import email_build, order_link
from kameng.notices.models import NoticeLanguage, OrderNotice, OrderNoticeKind, OrderNoticeStatus
from kameng.orders.aftercare import AftercareEvent
from kameng.orders.models import Order

logger = logging.getLogger(__name__)


def orders_delivered_email(*, order_ids: list[int], event: str) -> None:
    """Aftercare listener: one delivery e-mail per delivered order whose buyer has an address, at most once."""
    if event != AftercareEvent.DELIVERED:
        return
    orders = list(
        Order.objects.filter(pk__in=order_ids, delivered_at__isnull=False)
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
