"""What each business event posts: one function per event, answering the journal (kind, reference, legs).

Every money movement in kameng is one of these; callers post the answer with `journal_draft_post` (one journal) or
`journal_post_many` (a batch, PostgreSQL), so the legs of an order payment, a refund or a top-up are written down
in exactly one place.

Where the money of an order sits: an order delivered at once (card keys) is paid straight into platform revenue;
an order fulfilled later (manual goods, direct top-ups) is paid into `orders_in_progress` and stays there until it
is delivered (→ revenue) or refunded (→ the buyer's wallet).

Suppliers (kameng.suppliers): a delivered order's cost moves from platform revenue to the supplier's payable, less
the tax withheld (代扣代缴); a refund reverses it. A withdrawal moves the payable into review, then out by bank
transfer (payout clearing) or back to the payable when staff reject it.
"""

from __future__ import annotations

from decimal import Decimal

from kameng.core.money import ZERO
from kameng.ledger.models import AccountKind, JournalKind
from kameng.ledger.services import (
    JournalDraft,
    Leg,
    credit,
    debit,
    owner_account_id,
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


# --- suppliers (kameng.suppliers.settlement, kameng.suppliers.withdrawals) -------------------------------------------
# Zero legs are left out (a leg is a positive amount); the callers make the parts add up to the whole.


def _nonzero(legs: list[Leg]) -> list[Leg]:
    return [leg for leg in legs if leg.amount > ZERO]


def _payable_id(owner_id: int) -> int:
    return owner_account_id(user_id=owner_id, kind=AccountKind.SUPPLIER_PAYABLE)


def _debt_id(owner_id: int) -> int:
    return owner_account_id(user_id=owner_id, kind=AccountKind.SUPPLIER_DEBT)


def _in_review_id() -> int:
    return system_account_id(kind=AccountKind.SUPPLIER_WITHDRAWALS_IN_REVIEW)


def supplier_settlement(*, reference: str, memo: str, owner_id: int, cost: Decimal, tax: Decimal,
                        debt_repaid: Decimal = ZERO) -> JournalDraft:
    """A supplier delivered goods at `cost`: platform revenue → tax withheld (`tax`) + the supplier's debt paid
    down (`debt_repaid`, what earlier reversals left it owing) + the supplier's payable (the rest)."""
    payable = cost - tax - debt_repaid
    if tax < ZERO or debt_repaid < ZERO or payable < ZERO:
        raise ValueError(f"settlement parts do not fit the cost {cost}: tax {tax}, debt {debt_repaid}")
    return JournalDraft(kind=JournalKind.SUPPLIER_SETTLEMENT, reference=reference, memo=memo, legs=_nonzero([
        debit(_revenue_id(), cost), credit(system_account_id(kind=AccountKind.TAX_WITHHELD), tax),
        credit(_debt_id(owner_id), debt_repaid), credit(_payable_id(owner_id), payable)]))


def supplier_settlement_reversal(*, reference: str, memo: str, owner_id: int, cost: Decimal, tax: Decimal,
                                 from_payable: Decimal, as_debt: Decimal) -> JournalDraft:
    """A refund takes back (part of) a settlement: the tax withheld + what the payable still holds + the rest as
    the supplier's debt → platform revenue. The payable never goes below zero; the debt is paid down by the
    supplier's next settlements."""
    if tax + from_payable + as_debt != cost or min(tax, from_payable, as_debt) < ZERO:
        raise ValueError(f"reversal parts do not add up to {cost}")
    return JournalDraft(kind=JournalKind.SUPPLIER_SETTLEMENT_REVERSAL, reference=reference, memo=memo,
                        legs=_nonzero([debit(system_account_id(kind=AccountKind.TAX_WITHHELD), tax),
                                       debit(_payable_id(owner_id), from_payable), debit(_debt_id(owner_id), as_debt),
                                       credit(_revenue_id(), cost)]))


def supplier_withdrawal_requested(*, reference: str, memo: str, owner_id: int, amount: Decimal) -> JournalDraft:
    """A supplier asked to withdraw: its payable → withdrawals in review (it cannot be spent twice)."""
    return JournalDraft(kind=JournalKind.SUPPLIER_WITHDRAWAL, reference=reference, memo=memo,
                        legs=[debit(_payable_id(owner_id), amount), credit(_in_review_id(), amount)])


def supplier_withdrawal_paid(*, reference: str, memo: str, amount: Decimal) -> JournalDraft:
    """Staff paid the withdrawal by bank transfer: withdrawals in review → payout clearing (money left the bank)."""
    return JournalDraft(kind=JournalKind.SUPPLIER_WITHDRAWAL_PAID, reference=reference, memo=memo,
                        legs=[debit(_in_review_id(), amount),
                              credit(system_account_id(kind=AccountKind.SUPPLIER_PAYOUT_CLEARING), amount)])


def supplier_withdrawal_rejected(*, reference: str, memo: str, owner_id: int, amount: Decimal) -> JournalDraft:
    """Staff rejected the withdrawal: withdrawals in review → back to the supplier's payable."""
    return JournalDraft(kind=JournalKind.SUPPLIER_WITHDRAWAL_REJECTED, reference=reference, memo=memo,
                        legs=[debit(_in_review_id(), amount), credit(_payable_id(owner_id), amount)])


# --- resellers: sub-site margins and commissions (kameng.resellers.earnings, .commission_withdrawals) ---------------
# A delivered order's money is platform revenue (above); what a sub-site owner's margin or an inviter's commission
# takes of it waits in one system account (earnings pending) for the confirmation period, then goes to the owner's
# wallet (margin) or commission balance (commission); a refund before that gives it back to revenue. Commission
# leaves its balance by a withdrawal (in review → payout clearing, or back when rejected) or into the wallet.


def _earnings_pending_id() -> int:
    return system_account_id(kind=AccountKind.RESELLER_EARNINGS_PENDING)


def _commission_id(owner_id: int) -> int:
    return owner_account_id(user_id=owner_id, kind=AccountKind.RESELLER_COMMISSION)


def _reseller_in_review_id() -> int:
    return system_account_id(kind=AccountKind.RESELLER_WITHDRAWALS_IN_REVIEW)


def reseller_earning_pending(*, reference: str, memo: str, amount: Decimal, is_margin: bool) -> JournalDraft:
    """A delivered order earns a sub-site margin or a commission: platform revenue → earnings pending."""
    kind = JournalKind.RESELLER_MARGIN_PENDING if is_margin else JournalKind.COMMISSION_PENDING
    return JournalDraft(kind=kind, reference=reference, memo=memo,
                        legs=[debit(_revenue_id(), amount), credit(_earnings_pending_id(), amount)])


def reseller_earning_reversed(*, reference: str, memo: str, amount: Decimal, is_margin: bool) -> JournalDraft:
    """The order was refunded (in part) before the earning was confirmed: earnings pending → platform revenue."""
    kind = JournalKind.RESELLER_MARGIN_REVERSED if is_margin else JournalKind.COMMISSION_REVERSED
    return JournalDraft(kind=kind, reference=reference, memo=memo,
                        legs=[debit(_earnings_pending_id(), amount), credit(_revenue_id(), amount)])


def reseller_margin_released(*, reference: str, memo: str, owner_id: int, amount: Decimal) -> JournalDraft:
    """A sub-site margin confirmed: earnings pending → the sub-site owner's wallet."""
    return JournalDraft(kind=JournalKind.RESELLER_MARGIN_RELEASED, reference=reference, memo=memo,
                        legs=[debit(_earnings_pending_id(), amount),
                              credit(wallet_account_id(user_id=owner_id), amount)])


def commission_released(*, reference: str, memo: str, owner_id: int, amount: Decimal) -> JournalDraft:
    """A commission confirmed: earnings pending → the beneficiary's commission balance (withdrawable)."""
    return JournalDraft(kind=JournalKind.COMMISSION_RELEASED, reference=reference, memo=memo,
                        legs=[debit(_earnings_pending_id(), amount), credit(_commission_id(owner_id), amount)])


def commission_to_wallet(*, reference: str, memo: str, owner_id: int, amount: Decimal) -> JournalDraft:
    """转入余额: the beneficiary's commission balance → its wallet, at once."""
    return JournalDraft(kind=JournalKind.COMMISSION_TO_WALLET, reference=reference, memo=memo,
                        legs=[debit(_commission_id(owner_id), amount),
                              credit(wallet_account_id(user_id=owner_id), amount)])


def commission_withdrawal_requested(*, reference: str, memo: str, owner_id: int, amount: Decimal) -> JournalDraft:
    """A reseller asked to withdraw commission: its commission balance → reseller withdrawals in review."""
    return JournalDraft(kind=JournalKind.COMMISSION_WITHDRAWAL, reference=reference, memo=memo,
                        legs=[debit(_commission_id(owner_id), amount), credit(_reseller_in_review_id(), amount)])


def commission_withdrawal_paid(*, reference: str, memo: str, amount: Decimal) -> JournalDraft:
    """Staff paid it by bank transfer: reseller withdrawals in review → reseller payout clearing."""
    return JournalDraft(kind=JournalKind.COMMISSION_WITHDRAWAL_PAID, reference=reference, memo=memo,
                        legs=[debit(_reseller_in_review_id(), amount),
                              credit(system_account_id(kind=AccountKind.RESELLER_PAYOUT_CLEARING), amount)])


def commission_withdrawal_rejected(*, reference: str, memo: str, owner_id: int, amount: Decimal) -> JournalDraft:
    """Staff rejected it: reseller withdrawals in review → back to the commission balance."""
    return JournalDraft(kind=JournalKind.COMMISSION_WITHDRAWAL_REJECTED, reference=reference, memo=memo,
                        legs=[debit(_reseller_in_review_id(), amount), credit(_commission_id(owner_id), amount)])
# --- AML review of large top-ups (反洗钱, kameng.payments.aml) ------------------------------------------------------
# A held top-up is posted as WALLET_TOPUP like any other (same kind, same reference: the payment number), so the
# database refuses crediting one payment both to the wallet and to the hold. It waits in the owner's WALLET_HOLD
# account (not spendable) until staff release it into the wallet or refund it through its channel.


def _wallet_hold_id(user_id: int) -> int:
    return owner_account_id(user_id=user_id, kind=AccountKind.WALLET_HOLD)


def wallet_topup_held(*, payment_number: str, memo: str, channel_code: str, user_id: int,
                      amount: Decimal) -> JournalDraft:
    """A top-up that must wait for AML review arrived: gateway clearing → the buyer's held top-ups."""
    return JournalDraft(kind=JournalKind.WALLET_TOPUP, reference=payment_number, memo=memo,
                        legs=[debit(_clearing_id(channel_code), amount), credit(_wallet_hold_id(user_id), amount)])


def aml_topup_released(*, review_number: str, memo: str, user_id: int, amount: Decimal) -> JournalDraft:
    """Staff approved a held top-up: the buyer's held top-ups → the buyer's wallet."""
    return JournalDraft(kind=JournalKind.AML_TOPUP_RELEASED, reference=review_number, memo=memo,
                        legs=[debit(_wallet_hold_id(user_id), amount),
                              credit(wallet_account_id(user_id=user_id), amount)])


def aml_topup_refunded(*, refund_number: str, memo: str, channel_code: str, user_id: int,
                       amount: Decimal) -> JournalDraft:
    """Staff rejected a held top-up: the buyer's held top-ups → gateway clearing (refunded through its channel)."""
    return JournalDraft(kind=JournalKind.AML_TOPUP_REFUNDED, reference=refund_number, memo=memo,
                        legs=[debit(_wallet_hold_id(user_id), amount), credit(_clearing_id(channel_code), amount)])


def aml_topup_refund_reversal(*, refund_number: str, memo: str, channel_code: str, user_id: int,
                              amount: Decimal) -> JournalDraft:
    """The gateway refused to refund a rejected top-up: gateway clearing → back to the held top-ups (never into the
    spendable wallet: staff send the refund again)."""
    return JournalDraft(kind=JournalKind.AML_TOPUP_REFUND_REVERSAL, reference=refund_number, memo=memo,
                        legs=[debit(_clearing_id(channel_code), amount), credit(_wallet_hold_id(user_id), amount)])
