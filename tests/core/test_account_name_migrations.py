"""The bank-account holder's name (户名) of supplier and reseller withdrawals, encrypted by migration: existing rows
keep their name (read back through the model), the raw column no longer holds it, and going back restores it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from kameng.resellers.models import Reseller, ResellerStatus, ResellerWithdrawal
from kameng.suppliers.models import SupplierWithdrawal
from tests.factories import SupplierFactory, UserFactory

BEFORE = [("suppliers", "0008_notify_kameng_connector"), ("resellers", "0004_scan_reseller_contact_encrypted")]
AFTER = [("suppliers", "0009_harden_withdrawal_account_name_encrypted"),
         ("resellers", "0005_harden_withdrawal_account_name_encrypted")]
SUPPLIER_HOLDER = "司徒静安"
RESELLER_HOLDER = "上官明远"


def _migrate(target: list[tuple[str, str]] | None = None) -> Any:
    executor = MigrationExecutor(connection)
    target = target or executor.loader.graph.leaf_nodes()
    executor.migrate(target)
    executor.loader.build_graph()
    return executor.loader.project_state(target).apps


def _raw(table: str, pk: int) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT account_name FROM {table} WHERE id = %s", [pk])  # our table names
        value = cursor.fetchone()[0]
    return bytes(value) if not isinstance(value, str) else value.encode()


@pytest.mark.django_db(transaction=True)
def test_existing_holder_names_are_encrypted_and_going_back_restores_them() -> None:
    supplier = SupplierFactory.create()
    reseller = Reseller.objects.create(user=UserFactory.create(), status=ResellerStatus.ACTIVE)
    try:
        old = _migrate(BEFORE)
        supplier_row = old.get_model("suppliers", "SupplierWithdrawal").objects.create(
            number="W-MIG-1", supplier_id=supplier.pk, amount=Decimal("100.00"), bank_name="工商银行",
            account_name=SUPPLIER_HOLDER, account_number="6222020200112233445")
        reseller_rows = [old.get_model("resellers", "ResellerWithdrawal").objects.create(
            number=f"RW-MIG-{index}", reseller_id=reseller.pk, amount=Decimal("50.00"), bank_name=bank,
            account_name=name, destination=destination)
            for index, (bank, name, destination) in enumerate([("建设银行", RESELLER_HOLDER, "bank"),
                                                                 ("", "", "wallet")])]

        _migrate(AFTER)

        assert SupplierWithdrawal.objects.get(pk=supplier_row.pk).account_name == SUPPLIER_HOLDER
        assert [ResellerWithdrawal.objects.get(pk=row.pk).account_name for row in reseller_rows] == [
            RESELLER_HOLDER, ""]
        assert SUPPLIER_HOLDER.encode() not in _raw("suppliers_supplierwithdrawal", supplier_row.pk)
        assert RESELLER_HOLDER.encode() not in _raw("resellers_resellerwithdrawal", reseller_rows[0].pk)

        back = _migrate(BEFORE)

        assert back.get_model("suppliers", "SupplierWithdrawal").objects.get(
            pk=supplier_row.pk).account_name == SUPPLIER_HOLDER
        assert list(back.get_model("resellers", "ResellerWithdrawal").objects.order_by("pk").values_list(
            "account_name", flat=True)) == [RESELLER_HOLDER, ""]
    finally:
        _migrate()
