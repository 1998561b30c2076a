"""Row locks of reseller commission money, taken in one place so every path locks in the same order: the reseller's
row first (its withdrawals and transfers to the wallet take turns), then a withdrawal (its review happens once),
then the ledger accounts (the ledger locks those itself, in id order). Earnings lock the order row, then their
own rows (kameng.resellers.earnings)."""

from __future__ import annotations

from kameng.core.errors import NotFoundError
from kameng.resellers.models import Reseller, ResellerWithdrawal


def reseller_lock(*, reseller_id: int) -> Reseller:
    reseller = Reseller.objects.select_for_update().filter(pk=reseller_id).first()
    if reseller is None:
        raise NotFoundError("代理商不存在", code="reseller_not_found")
    return reseller


def reseller_withdrawal_lock(*, withdrawal_id: int) -> ResellerWithdrawal:
    withdrawal = ResellerWithdrawal.objects.select_for_update().filter(pk=withdrawal_id).first()
    if withdrawal is None:
        raise NotFoundError("提现申请不存在", code="withdrawal_not_found")
    return withdrawal
