"""The buyer's wallet statement as shown to the buyer: the ledger's wallet movements, with an order paid through a
gateway shown as the one order payment it was.

The ledger posts such a payment as two real journals on the wallet: the gateway's money arriving (钱包充值 +49.50,
referenced by the payment number) and the order taking it (订单支付 −49.50, referenced by the order number). Only
this presentation joins them; the ledger keeps both.

Every line names the order it belongs to, if any (`order_number`; the page links it to the order): an order
payment and a refund to the wallet by their reference (the order number, or the refund's number for a refund made
by staff), a top-up by the order its payment was for (money that arrived for an order it could not pay), an
original-channel refund and its reversal by their refund's order. A plain top-up or a manual adjustment has none.
"""

from __future__ import annotations

from typing import Any

from kameng.ledger.models import JournalKind
from kameng.ledger.selectors import wallet_statement
from kameng.payments.models import Payment, PaymentPurpose, PaymentStatus, Refund

# Journals referenced by the order's number, or by a refund's number (kameng.payments.refunds).
_BY_ORDER_OR_REFUND = frozenset({JournalKind.ORDER_PAYMENT, JournalKind.ORDER_REFUND})
_BY_REFUND = frozenset({JournalKind.ORDER_REFUND, JournalKind.REFUND_PAYOUT, JournalKind.REFUND_PAYOUT_REVERSAL})


def wallet_statement_lines(*, user_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The wallet statement, newest first, at most `limit` lines. Each line is a ledger movement (see
    `kameng.ledger.selectors.wallet_statement`) with `paid_with`: "" for a movement of the wallet's own money, or
    the channel's name for an order paid through it, shown once as the order payment (its amount is what the order
    cost, and the wallet's balance did not change), and `order_number` (see the module docstring; "" for none)."""
    # Twice the lines: each joined pair becomes one line, and the page should still show `limit` of them.
    movements = wallet_statement(user_id=user_id, limit=2 * limit)
    rows: list[dict[str, Any]] = [{**row, "paid_with": "", "order_number": ""} for row in movements]
    _name_orders(user_id, rows)
    top_up_numbers = [row["reference"] for row in rows if row["journal_kind"] == JournalKind.WALLET_TOPUP]
    order_numbers = [row["reference"] for row in rows if row["journal_kind"] == JournalKind.ORDER_PAYMENT]
    if not top_up_numbers or not order_numbers:
        return rows[:limit]
    payments = (Payment.objects.filter(user_id=user_id, purpose=PaymentPurpose.ORDER, status=PaymentStatus.SUCCEEDED,
                                       number__in=top_up_numbers, order__number__in=order_numbers)
                .values_list("number", "order__number", "channel__name"))
    paid_through = {number: (order_number, channel) for number, order_number, channel in payments}
    lines: list[dict[str, Any]] = []
    for row in rows:
        previous = lines[-1] if lines else None
        # Credited and spent in one transaction with the wallet locked, so the order's 订单支付 is the very next
        # movement of the wallet after the gateway's money (newest first: the line just before this one), for the
        # same amount. A second payment of the same order, or one the order could not take (expired, sold out),
        # has no such line and stays what it is: money in the wallet.
        order_number, channel = paid_through.get(str(row["reference"]), ("", ""))
        if (row["journal_kind"] == JournalKind.WALLET_TOPUP and order_number and previous is not None
                and previous["journal_kind"] == JournalKind.ORDER_PAYMENT and previous["reference"] == order_number
                and previous["amount"] == -row["amount"] and not previous["paid_with"]):
            previous["paid_with"] = channel
            continue
        lines.append(row)
    return lines[:limit]


def _name_orders(user_id: int, rows: list[dict[str, Any]]) -> None:
    """Fill in each line's `order_number`: two queries at most, for the top-ups' payments and the refunds."""
    payment_numbers = [row["reference"] for row in rows if row["journal_kind"] == JournalKind.WALLET_TOPUP]
    refund_numbers = [row["reference"] for row in rows if row["journal_kind"] in _BY_REFUND]
    paid_for = dict(Payment.objects.filter(user_id=user_id, number__in=payment_numbers, order__isnull=False)
                    .values_list("number", "order__number")) if payment_numbers else {}
    refunded = dict(Refund.objects.filter(order__buyer_id=user_id, number__in=refund_numbers)
                    .values_list("number", "order__number")) if refund_numbers else {}
    for row in rows:
        reference = str(row["reference"])
        kind = row["journal_kind"]
        if kind == JournalKind.WALLET_TOPUP:
            row["order_number"] = paid_for.get(reference, "")
        elif kind in _BY_REFUND and reference in refunded:
            row["order_number"] = refunded[reference]
        elif kind in _BY_ORDER_OR_REFUND:
            row["order_number"] = reference
