"""The buyer coming back from a gateway (its return URL), for order payments and top-ups alike.

A return is not a notification: it travels through the buyer's browser, and some protocols' returns say nothing
about the trade's status (Alipay page pay's carries no trade_status). So it is never applied as one, never recorded
as a notification, and never a risk event when it does not verify. What it carries is checked against the
gateway's signature; a genuine one makes us ask the gateway about that payment at once (outside any transaction),
so a buyer whose notification is slow or lost sees the payment confirmed. Anything else (unsigned, forged, a
gateway that cannot be reached, not paid yet) changes nothing: the notification, or reconciliation, settles it.
"""

from __future__ import annotations

import logging

from kameng.core.errors import ApplicationError
from kameng.payments.gateways.registry import gateway_for
from kameng.payments.models import Payment, PaymentStatus
from kameng.payments.reconciliation import payment_recheck
from kameng.payments.selectors import payment_of_user

logger = logging.getLogger(__name__)


def payment_return_process(*, user_id: int, params: dict[str, str]) -> Payment | None:
    """The buyer's payment named by a gateway return (None: not theirs, or no such payment), confirmed with the
    gateway first when the return is genuinely signed and the payment still waits."""
    payment = payment_of_user(user_id=user_id, number=str(params.get("out_trade_no", "")))
    if payment is None or payment.status == PaymentStatus.SUCCEEDED:
        return payment
    try:
        is_authentic = gateway_for(payment.channel).return_is_authentic(params)
    except ApplicationError as error:  # the channel cannot be used now: the notification will come when it can
        logger.info("return for %s not checked: %s", payment.number, error.message)
        return payment
    if not is_authentic:
        logger.info("return for %s is not signed by its gateway: ignored", payment.number)
        return payment
    try:
        payment_recheck(payment_id=payment.pk)
    except ApplicationError as error:  # unreachable, or an odd answer: wait for the notification
        logger.info("return for %s: the gateway could not be asked (%s)", payment.number, error.message)
    payment.refresh_from_db()
    return payment
