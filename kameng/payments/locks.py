"""The one place payments and refunds are locked, so every path takes the same locks in the same order.

The order is the one stated in kameng/orders/services.py: the order row first, then this app's row (the payment
or the refund), then the wallet last (journal_post updates it). A payment that pays an order, and a refund, lock
their order before themselves, so crediting a late second payment and refunding the order at the same moment
queue on the order instead of each holding what the other waits for.
"""

from __future__ import annotations

from kameng.ledger.models import Account
from kameng.ledger.services import wallet_account_id
from kameng.orders.locks import order_lock
from kameng.payments.models import AmlReview, Payment, Refund


def payment_lock_for_credit(*, number: str, channel_id: int) -> Payment | None:
    """Lock a payment about to be credited, after its order when it pays one. None: no such payment."""
    payments = Payment.objects.filter(number=number, channel_id=channel_id)
    order_id = payments.values_list("order_id", flat=True).first()  # never changes once the payment exists
    if order_id is not None:
        order_lock(order_id=order_id)
    return payments.select_for_update().first()


def payment_lock(*, payment_id: int) -> Payment:
    """Lock a payment about to be closed, after its order when it pays one (a notification crediting it at the
    same moment takes the same two locks in the same order, so one waits for the other)."""
    order_id = Payment.objects.values_list("order_id", flat=True).get(pk=payment_id)
    if order_id is not None:
        order_lock(order_id=order_id)
    return Payment.objects.select_for_update().get(pk=payment_id)


def refund_lock(*, refund_id: int) -> Refund:
    """Lock a refund about to be finished, after its order (finishing may post to the wallet and note the order).
    The refund row is locked alone, without joins: MariaDB has no FOR UPDATE OF."""
    order_id = Refund.objects.values_list("order_id", flat=True).get(pk=refund_id)
    if order_id is not None:  # a rejected top-up's refund has no order (kameng.payments.aml)
        order_lock(order_id=order_id)
    return Refund.objects.select_for_update().get(pk=refund_id)


def topup_owner_lock(*, user_id: int) -> None:
    """Lock the buyer's wallet row while a top-up of theirs is credited (after the payment, as crediting always
    takes them): the AML decision reads the buyer's other top-ups, so two of them are decided one at a time."""
    Account.objects.select_for_update().filter(pk=wallet_account_id(user_id=user_id)).values_list("pk").first()


def aml_review_lock(*, review_id: int) -> AmlReview:
    """Lock an AML review about to be decided (the row alone; the wallet and hold are locked after it by the
    journal). Nothing locks a review after a payment or a wallet, so this order cannot cross another."""
    return AmlReview.objects.select_for_update().get(pk=review_id)
