"""Commission withdrawals (佣金提现) with staff review, and 转入余额: the only ways money leaves a reseller's
commission balance (its confirmed commissions, kameng.resellers.earnings).

To a bank account: at least KAMENG_RESELLER_WITHDRAWAL_MIN yuan. States REQUESTED → PAID (staff transferred the
money by bank, outside the system, and record the transfer reference) or REQUESTED → REJECTED (with a reason; the
money goes back to the commission balance); each happens once — the review (kameng.ledger.withdrawals)
locks the withdrawal row and refuses any other move. The money moves at request (commission → withdrawals in
review), so it cannot be asked for twice: a reseller's requests take turns on its row, and the ledger's guarded
update refuses a balance below zero whatever races. The bank account number is encrypted at rest and shown masked.

Into the wallet (转入余额): any amount of the balance, at once, no review (commission → wallet); recorded as a
withdrawal with destination wallet, already paid, so both show in one history. Wallet money is for buying only.

Risk control's withdraw checkpoint (kameng.risk.engine) decides on a bank withdrawal before any money moves (not
on 转入余额, which keeps the money on the platform).

Journals are referenced by the withdrawal's number. Once commission has left the balance (paid out, or moved to
the wallet) the oldest confirmed commissions it covers are marked `withdrawn` (first in, first out), so the
earnings list says which commissions are spent.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from kameng.core.errors import ApplicationError, ConflictError
from kameng.core.ids import public_number
from kameng.core.money import ZERO, grouped, money
from kameng.ledger import recipes
from kameng.ledger.models import Account, AccountKind
from kameng.ledger.services import InsufficientFundsError, journal_draft_post
from kameng.ledger.withdrawals import withdrawal_bank_details_checked, withdrawal_review_pay, withdrawal_review_reject
from kameng.resellers.earnings_locks import reseller_lock, reseller_withdrawal_lock
from kameng.resellers.models import (
    Earning,
    EarningKind,
    EarningState,
    Reseller,
    ResellerWithdrawal,
    ResellerWithdrawalDestination,
    ResellerWithdrawalStatus,
)
from kameng.risk.engine import RiskContext, risk_check
from kameng.risk.models import Checkpoint

W = ResellerWithdrawalStatus
D = ResellerWithdrawalDestination


def mask_bank_account(number: str) -> str:
    """`6222020200112233445` → `**** 3445`: the last four digits, as a bank statement shows them."""
    return f"**** {number[-4:]}" if len(number) > 4 else "****"


def commission_withdrawal_minimum() -> Decimal:
    return money(settings.KAMENG_RESELLER_WITHDRAWAL_MIN)


def commission_balance(*, user_id: int) -> Decimal:
    """The user's confirmed commission not yet withdrawn or moved to the wallet, as the ledger holds it now."""
    balance = (Account.objects.filter(owner_id=user_id, kind=AccountKind.RESELLER_COMMISSION)
               .values_list("balance", flat=True).first())
    return money(balance if balance is not None else ZERO)


def _existing(reseller_id: int, request_id: str | None) -> ResellerWithdrawal | None:
    if not request_id:
        return None
    return ResellerWithdrawal.objects.filter(reseller_id=reseller_id, request_id=request_id).first()


def _checked_reseller(reseller: Reseller) -> None:
    if not reseller.is_active:
        raise ConflictError("代理账号未启用，暂不能提现", code="reseller_not_active")


def commission_withdrawal_request(*, reseller_id: int, amount: Decimal, bank_name: str, account_name: str,
                                  account_number: str, request_id: str | None = None, user_id: int | None = None,
                                  client_ip: str = "", device_id: str = "") -> ResellerWithdrawal:
    """Ask to withdraw `amount` of the commission balance to a bank account; the money leaves the balance now.
    The same `request_id` again answers the withdrawal it made (a form sent twice). `user_id`, `client_ip` and
    `device_id` are who asks and from where, for risk control's withdraw checkpoint."""
    amount = money(amount)
    bank_name, account_name, account_number = withdrawal_bank_details_checked(
        bank_name=bank_name, account_name=account_name, account_number=account_number, amount=amount,
        minimum=commission_withdrawal_minimum())
    if _existing(reseller_id, request_id) is None:  # a replay answers its withdrawal, unchecked again
        risk_check(checkpoint=Checkpoint.WITHDRAW, context=RiskContext(
            user_id=user_id, ip=client_ip or None, device_id=device_id or None, amount=amount))
    return _take(reseller_id=reseller_id, amount=amount, request_id=request_id, destination=D.BANK,
                 bank={"bank_name": bank_name, "account_name": account_name, "account_number": account_number})


def commission_to_wallet(*, reseller_id: int, amount: Decimal, request_id: str | None = None) -> ResellerWithdrawal:
    """转入余额: move `amount` of the commission balance into the reseller's wallet, at once."""
    amount = money(amount)
    if amount <= ZERO:
        raise ApplicationError("金额必须大于 0", code="invalid_amount")
    return _take(reseller_id=reseller_id, amount=amount, request_id=request_id, destination=D.WALLET, bank={})


def _take(*, reseller_id: int, amount: Decimal, request_id: str | None, destination: str,
          bank: dict[str, str]) -> ResellerWithdrawal:
    existing = _existing(reseller_id, request_id)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            reseller = reseller_lock(reseller_id=reseller_id)
            _checked_reseller(reseller)
            available = commission_balance(user_id=reseller.user_id)
            if amount > available:
                raise ConflictError("佣金余额不足：当前可用 ¥%(amount)s", code="withdrawal_exceeds_balance",
                                    params={"amount": grouped(available)})
            to_wallet = destination == D.WALLET
            withdrawal = ResellerWithdrawal.objects.create(
                number=public_number("CW"), reseller=reseller, amount=amount, destination=destination,
                status=W.PAID if to_wallet else W.REQUESTED, request_id=request_id,
                reviewed_at=timezone.now() if to_wallet else None, **bank)
            if to_wallet:
                draft = recipes.commission_to_wallet(reference=withdrawal.number, memo="佣金转入余额",
                                                     owner_id=reseller.user_id, amount=amount)
            else:
                draft = recipes.commission_withdrawal_requested(reference=withdrawal.number, memo="佣金提现申请",
                                                                owner_id=reseller.user_id, amount=amount)
            journal_draft_post(draft=draft)
            if to_wallet:
                _mark_withdrawn(user_id=reseller.user_id, reseller_id=reseller.pk)
    except InsufficientFundsError as error:  # the ledger's guard: never below zero, whatever raced
        raise ConflictError("佣金余额不足", code="withdrawal_exceeds_balance") from error
    except IntegrityError:  # the same request_id, committed by a concurrent submit
        existing = _existing(reseller_id, request_id)
        if existing is None:
            raise
        return existing
    return withdrawal


def _owner_id(withdrawal: ResellerWithdrawal) -> int:
    return Reseller.objects.filter(pk=withdrawal.reseller_id).values_list("user_id", flat=True).get()


def _is_bank(withdrawal: ResellerWithdrawal) -> bool:
    return withdrawal.destination == D.BANK  # 转入余额 is paid at once, never reviewed


def commission_withdrawal_pay(*, withdrawal_id: int, reviewer_id: int | None,
                              transfer_reference: str) -> ResellerWithdrawal:
    """Staff paid the withdrawal by bank transfer (`transfer_reference`, the bank's serial): approve it, once;
    the commissions it covers are marked withdrawn."""
    return withdrawal_review_pay(
        lock=lambda: reseller_withdrawal_lock(withdrawal_id=withdrawal_id), reviewer_id=reviewer_id,
        transfer_reference=transfer_reference, is_reviewable=_is_bank,
        journal=lambda withdrawal, serial: recipes.commission_withdrawal_paid(
            reference=withdrawal.number, memo=f"佣金提现打款 {serial}"[:200], amount=withdrawal.amount),
        then=lambda withdrawal: _mark_withdrawn(user_id=_owner_id(withdrawal), reseller_id=withdrawal.reseller_id))


def commission_withdrawal_reject(*, withdrawal_id: int, reviewer_id: int | None, reason: str) -> ResellerWithdrawal:
    """Staff refused the withdrawal, saying why: the money goes back to the commission balance, once."""
    return withdrawal_review_reject(
        lock=lambda: reseller_withdrawal_lock(withdrawal_id=withdrawal_id), reviewer_id=reviewer_id, reason=reason,
        is_reviewable=_is_bank,
        journal=lambda withdrawal, why: recipes.commission_withdrawal_rejected(
            reference=withdrawal.number, memo=f"佣金提现驳回 {why}"[:200], owner_id=_owner_id(withdrawal),
            amount=withdrawal.amount))


def _mark_withdrawn(*, user_id: int, reseller_id: int) -> int:
    """Mark the oldest available commissions the money taken out so far covers as withdrawn (first in, first
    out); a commission only partly covered stays available. Returns how many were marked."""
    taken = money(ResellerWithdrawal.objects.filter(reseller_id=reseller_id, status=W.PAID)
                  .aggregate(total=Sum("amount"))["total"] or ZERO)
    commissions = Earning.objects.filter(beneficiary_id=user_id, kind=EarningKind.COMMISSION)
    covered = money(sum(((row["amount"] - row["reversed_amount"]) for row in commissions.filter(
        state=EarningState.WITHDRAWN).values("amount", "reversed_amount")), ZERO))
    marked: list[int] = []
    for earning_id, amount, reversed_amount in (commissions.filter(state=EarningState.AVAILABLE)
                                                .order_by("settled_at", "pk")
                                                .values_list("pk", "amount", "reversed_amount")):
        net = amount - reversed_amount
        if covered + net > taken:
            break
        covered += net
        marked.append(earning_id)
    if marked:
        Earning.objects.filter(pk__in=marked, state=EarningState.AVAILABLE).update(state=EarningState.WITHDRAWN)
    return len(marked)
