"""Supplier withdrawals (供货商提现) with staff review: the only way money leaves a supplier's payable.

A supplier's payable is its earned income (kameng.suppliers.settlement), an account of its own — never its buyer
wallet, which stays a closed prepaid balance (PROTOCOLS §6). What it may withdraw is its payable less what it owes
the platform (a refund reversed after an earlier withdrawal, `supplier_debt`), and at least
KAMENG_SUPPLIER_WITHDRAWAL_MIN yuan.

States: REQUESTED → PAID (staff transferred the money by bank, outside the system, and record the transfer
reference) or REQUESTED → REJECTED (with a reason; the money goes back to the payable). Each happens once: the
review locks the withdrawal row and refuses any other move. The money moves at request (payable → withdrawals in
review), so it cannot be asked for twice: requests of one supplier take turns on the supplier's row, and the
ledger's guarded update refuses a payable below zero whatever happens. Journals are referenced by the withdrawal's
number. The bank account number is encrypted at rest and shown masked.

Risk control's withdraw checkpoint (kameng.risk.engine) decides before any money moves, once the request is
well formed and is not a replay: a block refuses it (403), a review is stored for staff beside the review every
withdrawal gets anyway.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from kameng.core.errors import ConflictError
from kameng.core.ids import public_number
from kameng.core.money import ZERO, grouped, money
from kameng.ledger import recipes
from kameng.ledger.models import Account, AccountKind
from kameng.ledger.services import InsufficientFundsError, journal_draft_post
from kameng.ledger.withdrawals import withdrawal_bank_details_checked, withdrawal_review_pay, withdrawal_review_reject
from kameng.risk.engine import RiskContext, risk_check
from kameng.risk.models import Checkpoint
from kameng.suppliers.models import SupplierWithdrawal
from kameng.suppliers.money_locks import supplier_lock, withdrawal_lock


def mask_bank_account(number: str) -> str:
    """`6222020200112233445` → `**** 3445`: the last four digits, as a bank statement shows them."""
    return f"**** {number[-4:]}" if len(number) > 4 else "****"


def withdrawal_minimum() -> Decimal:
    return money(settings.KAMENG_SUPPLIER_WITHDRAWAL_MIN)


def supplier_balances(*, owner_id: int) -> tuple[Decimal, Decimal]:
    """(payable, debt) of the supplier owned by `owner_id`, as the ledger holds them now."""
    rows = dict(Account.objects.filter(owner_id=owner_id, kind__in=[AccountKind.SUPPLIER_PAYABLE,
                                                                    AccountKind.SUPPLIER_DEBT])
                .values_list("kind", "balance"))
    return money(rows.get(AccountKind.SUPPLIER_PAYABLE, ZERO)), money(rows.get(AccountKind.SUPPLIER_DEBT, ZERO))


def withdrawable_amount(*, owner_id: int) -> Decimal:
    payable, debt = supplier_balances(owner_id=owner_id)
    return max(payable - debt, ZERO)


def supplier_withdrawal_request(*, supplier_id: int, amount: Decimal, bank_name: str, account_name: str,
                                account_number: str, request_id: str | None = None, user_id: int | None = None,
                                client_ip: str = "", device_id: str = "") -> SupplierWithdrawal:
    """Ask to withdraw `amount` of the payable to a bank account; the money leaves the payable now. The same
    `request_id` again answers the withdrawal it made (a form sent twice), whatever the rest says. `user_id`,
    `client_ip` and `device_id` are who asks and from where, for risk control's withdraw checkpoint."""
    amount = money(amount)
    bank_name, account_name, account_number = withdrawal_bank_details_checked(
        bank_name=bank_name, account_name=account_name, account_number=account_number, amount=amount,
        minimum=withdrawal_minimum())
    existing = _existing(supplier_id, request_id)
    if existing is not None:
        return existing
    risk_check(checkpoint=Checkpoint.WITHDRAW, context=RiskContext(
        user_id=user_id, ip=client_ip or None, device_id=device_id or None, amount=amount))
    try:
        with transaction.atomic():
            supplier = supplier_lock(supplier_id=supplier_id)
            available = withdrawable_amount(owner_id=supplier.owner_id)
            if amount > available:
                raise ConflictError("可提现余额不足：当前可提现 ¥%(amount)s", code="withdrawal_exceeds_balance",
                                    params={"amount": grouped(available)})
            withdrawal = SupplierWithdrawal.objects.create(
                number=public_number("W"), supplier=supplier, amount=amount, bank_name=bank_name,
                account_name=account_name, account_number=account_number, request_id=request_id)
            journal_draft_post(draft=recipes.supplier_withdrawal_requested(
                reference=withdrawal.number, memo=f"提现申请 {supplier.name}"[:200], owner_id=supplier.owner_id,
                amount=amount))
    except InsufficientFundsError as error:  # the ledger's guard: never below zero, whatever raced
        raise ConflictError("可提现余额不足", code="withdrawal_exceeds_balance") from error
    except IntegrityError:  # the same request_id, committed by a concurrent submit
        existing = _existing(supplier_id, request_id)
        if existing is None:
            raise
        return existing
    return withdrawal


def _existing(supplier_id: int, request_id: str | None) -> SupplierWithdrawal | None:
    if not request_id:
        return None
    return SupplierWithdrawal.objects.filter(supplier_id=supplier_id, request_id=request_id).first()


def supplier_withdrawal_pay(*, withdrawal_id: int, reviewer_id: int | None,
                            transfer_reference: str) -> SupplierWithdrawal:
    """Staff paid the withdrawal by bank transfer (`transfer_reference`, the bank's serial): approve it, once."""
    return withdrawal_review_pay(
        lock=lambda: withdrawal_lock(withdrawal_id=withdrawal_id), reviewer_id=reviewer_id,
        transfer_reference=transfer_reference,
        journal=lambda withdrawal, serial: recipes.supplier_withdrawal_paid(
            reference=withdrawal.number, memo=f"提现打款 {serial}"[:200], amount=withdrawal.amount))


def supplier_withdrawal_reject(*, withdrawal_id: int, reviewer_id: int | None, reason: str) -> SupplierWithdrawal:
    """Staff refused the withdrawal, saying why: the money goes back to the supplier's payable, once."""
    return withdrawal_review_reject(
        lock=lambda: withdrawal_lock(withdrawal_id=withdrawal_id), reviewer_id=reviewer_id, reason=reason,
        journal=lambda withdrawal, why: recipes.supplier_withdrawal_rejected(
            reference=withdrawal.number, memo=f"提现驳回 {why}"[:200], owner_id=withdrawal.supplier.owner_id,
            amount=withdrawal.amount))
