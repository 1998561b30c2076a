"""What each business event posts: one function per event, answering the journal (kind, reference, legs).

Every money movement in kameng is one of these; callers post the answer with `journal_draft_post` (one journal) or
`journal_post_many` (a batch, PostgreSQL), so the legs of an order payment, a refund or a top-up are written down
in exactly one place.

Where the money of an order sits: an order delivered at once (card keys) is paid straight into platform revenue;
an order fulfilled later (manual goods, direct top-ups) is paid into `orders_in_progress` and stays there until it
is delivered (→ revenue) or refunded (→ the buyer's wallet).
"""

from __future__ import annotations

from decimal import Decimal

from kameng.ledger.models import AccountKind, JournalKind
from kameng.ledger.services import (
    JournalDraft,
    credit,
    debit,
    points_account_id,
    system_account_id,
    wallet_account_id,
)


def _revenue_id() -> int:
    return system_account_id(kind=AccountKind.PLATFORM_REVENUE)


def _hold_id() -> int:
    return system_account_id(kind=AccountKind.ORDERS_IN_PROGRESS)


def _clearing_id(channel_code: str) -> int:
    return system_account_id(kind=AccountKind.GATEWAY_CLEARING, suffix=channel_code)


def order_payment(*, order_number: str, memo: str, wallet_id: int, amount: Decimal) -> JournalDraft:
    """An order delivered at once, paid from the buyer's wallet: wallet → platform revenue."""
    return JournalDraft(kind=JournalKind.ORDER_PAYMENT, reference=order_number, memo=memo,
                        legs=[debit(wallet_id, amount), credit(_revenue_id(), amount)])


def order_payment_into_hold(*, order_number: str, memo: str, wallet_id: int, amount: Decimal) -> JournalDraft:
    """An order fulfilled later, paid from the buyer's wallet: wallet → orders in progress."""
    return JournalDraft(kind=JournalKind.ORDER_PAYMENT, reference=order_number, memo=memo,
                        legs=[debit(wallet_id, amount), credit(_hold_id(), amount)])


def order_hold_released(*, order_number: str, memo: str, amount: Decimal) -> JournalDraft:
    """The held order was delivered: orders in progress → platform revenue."""
    return JournalDraft(kind=JournalKind.ORDER_SALE, reference=order_number, memo=memo,
                        legs=[debit(_hold_id(), amount), credit(_revenue_id(), amount)])


def order_hold_refunded(*, order_number: str, memo: str, buyer_id: int, amount: Decimal) -> JournalDraft:
    """The held order failed or was refunded before delivery: orders in progress → the buyer's wallet."""
    return JournalDraft(kind=JournalKind.ORDER_REFUND, reference=order_number, memo=memo,
                        legs=[debit(_hold_id(), amount), credit(wallet_account_id(user_id=buyer_id), amount)])


def order_refund_to_wallet(*, reference: str, memo: str, buyer_id: int, amount: Decimal) -> JournalDraft:
    """A delivered order (its money in revenue) refunded to the buyer's wallet, fully or in part."""
    return JournalDraft(kind=JournalKind.ORDER_REFUND, reference=reference, memo=memo,
                        legs=[debit(_revenue_id(), amount), credit(wallet_account_id(user_id=buyer_id), amount)])


def wallet_topup_credit(*, payment_number: str, memo: str, channel_code: str, user_id: int,
                        amount: Decimal, kind: JournalKind = JournalKind.WALLET_TOPUP) -> JournalDraft:
    """Money that arrived through a gateway channel (a top-up, or an order payment landing first in the wallet):
    gateway clearing → wallet. `kind` is ADJUSTMENT for money put in by hand (the demo's seed funding)."""
    return JournalDraft(kind=kind, reference=payment_number, memo=memo,
                        legs=[debit(_clearing_id(channel_code), amount),
                              credit(wallet_account_id(user_id=user_id), amount)])


def refund_payout(*, refund_number: str, memo: str, channel_code: str, user_id: int,
                  amount: Decimal) -> JournalDraft:
    """An original-channel refund leaves the wallet towards the gateway: wallet → gateway clearing."""
    return JournalDraft(kind=JournalKind.REFUND_PAYOUT, reference=refund_number, memo=memo,
                        legs=[debit(wallet_account_id(user_id=user_id), amount),
                              credit(_clearing_id(channel_code), amount)])


def refund_payout_reversal(*, refund_number: str, memo: str, channel_code: str, user_id: int,
                           amount: Decimal) -> JournalDraft:
    """The gateway refused an original-channel refund: gateway clearing → back to the wallet."""
    return JournalDraft(kind=JournalKind.REFUND_PAYOUT_REVERSAL, reference=refund_number, memo=memo,
                        legs=[debit(_clearing_id(channel_code), amount),
                              credit(wallet_account_id(user_id=user_id), amount)])


# --- points (unit PTS, kameng.points) ------------------------------------------------------------------------------
# Points are whole numbers; the buyer's points account never goes below zero (the same guard as a wallet).


def _points(amount: int) -> Decimal:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"points are whole positive numbers, not {amount!r}")
    return Decimal(amount)


def points_earned(*, reference: str, memo: str, user_id: int, points: int) -> JournalDraft:
    """Points earned on a completed order: points issued → the buyer's points."""
    return JournalDraft(kind=JournalKind.POINTS_EARN, reference=reference, memo=memo,
                        legs=[debit(system_account_id(kind=AccountKind.POINTS_ISSUED), _points(points)),
                              credit(points_account_id(user_id=user_id), _points(points))])


def points_earned_reversed(*, reference: str, memo: str, user_id: int, points: int) -> JournalDraft:
    """Points of a refunded order taken back: the buyer's points → points issued."""
    return JournalDraft(kind=JournalKind.POINTS_EARN_REVERSAL, reference=reference, memo=memo,
                        legs=[debit(points_account_id(user_id=user_id), _points(points)),
                              credit(system_account_id(kind=AccountKind.POINTS_ISSUED), _points(points))])


def points_redeemed(*, reference: str, memo: str, user_id: int, points: int,
                    kind: JournalKind = JournalKind.POINTS_REDEEM) -> JournalDraft:
    """Points used to pay (an offset at checkout, or an exchange in the points shop with `kind` POINTS_EXCHANGE):
    the buyer's points → points redeemed."""
    return JournalDraft(kind=kind, reference=reference, memo=memo,
                        legs=[debit(points_account_id(user_id=user_id), _points(points)),
                              credit(system_account_id(kind=AccountKind.POINTS_REDEEMED), _points(points))])


def points_redeemed_returned(*, reference: str, memo: str, user_id: int, points: int) -> JournalDraft:
    """Points used on an order that was refunded, given back: points redeemed → the buyer's points."""
    return JournalDraft(kind=JournalKind.POINTS_REDEEM_RETURN, reference=reference, memo=memo,
                        legs=[debit(system_account_id(kind=AccountKind.POINTS_REDEEMED), _points(points)),
                              credit(points_account_id(user_id=user_id), _points(points))])


def points_expired(*, reference: str, memo: str, user_id: int, points: int) -> JournalDraft:
    """Points past their validity: the buyer's points → points expired."""
    return JournalDraft(kind=JournalKind.POINTS_EXPIRE, reference=reference, memo=memo,
                        legs=[debit(points_account_id(user_id=user_id), _points(points)),
                              credit(system_account_id(kind=AccountKind.POINTS_EXPIRED), _points(points))])
