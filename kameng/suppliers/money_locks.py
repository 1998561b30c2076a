"""Row locks of supplier money, taken in one place so every path locks in the same order: a supplier's row first
(its withdrawal requests take turns), then a withdrawal (its review happens once), then the ledger accounts (the
ledger locks those itself, in id order). Settlement locks its own (order, supplier) row and then the accounts."""

from __future__ import annotations

from kameng.core.errors import NotFoundError
from kameng.suppliers.models import Supplier, SupplierWithdrawal


def supplier_lock(*, supplier_id: int) -> Supplier:
    supplier = Supplier.objects.select_for_update().filter(pk=supplier_id).first()
    if supplier is None:
        raise NotFoundError("供货商不存在", code="supplier_not_found")
    return supplier


def withdrawal_lock(*, withdrawal_id: int) -> SupplierWithdrawal:
    withdrawal = SupplierWithdrawal.objects.select_for_update().filter(pk=withdrawal_id).first()
    if withdrawal is None:
        raise NotFoundError("提现申请不存在", code="withdrawal_not_found")
    return withdrawal
