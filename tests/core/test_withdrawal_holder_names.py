"""The bank-account holder's name (户名) of supplier and reseller withdrawals: encrypted at rest, masked (张*三) in the
consoles, the admin's lists, change pages and reject pages, in full only on the page where staff pay it, and not
searchable in the admin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from kameng.ledger import recipes
from kameng.ledger.services import journal_draft_post
from kameng.resellers.admin_earnings import ResellerWithdrawalAdmin
from kameng.resellers.commission_withdrawals import commission_withdrawal_request
from kameng.resellers.models import Reseller, ResellerStatus, ResellerWithdrawal
from kameng.suppliers.models import SupplierWithdrawal
from kameng.suppliers.money_admin import SupplierWithdrawalAdmin
from kameng.suppliers.withdrawals import supplier_withdrawal_request
from tests.factories import SupplierFactory, UserFactory
from tests.suppliers.money_support import credit_payable

pytestmark = pytest.mark.django_db
HOLDER = "张小三"
MASKED = "张*三"
ACCOUNT = "6222020200112233445"


def _supplier_withdrawal() -> SupplierWithdrawal:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "500.00")
    return supplier_withdrawal_request(supplier_id=supplier.pk, amount=Decimal("300.00"), bank_name="工商银行",
                                       account_name=HOLDER, account_number=ACCOUNT)


def _reseller_withdrawal() -> ResellerWithdrawal:
    user = UserFactory.create()
    reseller = Reseller.objects.create(user=user, status=ResellerStatus.ACTIVE)
    journal_draft_post(draft=recipes.reseller_earning_pending(reference="holder", memo="test",
                                                              amount=Decimal("300.00"), is_margin=False))
    journal_draft_post(draft=recipes.commission_released(reference="holder", memo="test", owner_id=user.pk,
                                                         amount=Decimal("300.00")))
    return commission_withdrawal_request(reseller_id=reseller.pk, amount=Decimal("200.00"), bank_name="工商银行",
                                         account_name=HOLDER, account_number=ACCOUNT)


def _raw(table: str) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT account_name FROM {table}")  # our table names
        return bytes(cursor.fetchone()[0])


def test_the_holder_name_is_encrypted_at_rest() -> None:
    _supplier_withdrawal()
    _reseller_withdrawal()

    assert SupplierWithdrawal.objects.get().account_name == HOLDER
    assert ResellerWithdrawal.objects.get().account_name == HOLDER
    assert HOLDER.encode() not in _raw("suppliers_supplierwithdrawal")
    assert HOLDER.encode() not in _raw("resellers_resellerwithdrawal")


@pytest.mark.parametrize(("make", "app"), [(_supplier_withdrawal, "suppliers_supplierwithdrawal"),
                                           (_reseller_withdrawal, "resellers_resellerwithdrawal")])
def test_staff_see_the_name_in_full_only_on_the_pay_page(admin_client: Client, make: object, app: str) -> None:
    withdrawal = make()  # type: ignore[operator]

    listing = admin_client.get(reverse(f"admin:{app}_changelist")).content.decode()
    change = admin_client.get(reverse(f"admin:{app}_change", args=[withdrawal.pk])).content.decode()
    reject = admin_client.get(reverse(f"admin:{app}_reject", args=[withdrawal.pk])).content.decode()
    pay = admin_client.get(reverse(f"admin:{app}_pay", args=[withdrawal.pk])).content.decode()

    assert HOLDER not in listing
    for page in (change, reject):
        assert HOLDER not in page
        assert MASKED in page
    assert f'data-testid="review-account-name">{HOLDER}<' in pay


def test_the_consoles_show_the_name_masked(client: Client) -> None:
    supplied = _supplier_withdrawal()
    client.force_login(supplied.supplier.owner)
    supplier_page = client.get(reverse("web:supplier_withdrawal", args=[supplied.number])).content.decode()
    resold = _reseller_withdrawal()
    client.force_login(resold.reseller.user)
    reseller_page = client.get(reverse("web:reseller_withdrawal", args=[resold.number])).content.decode()

    for page in (supplier_page, reseller_page):
        assert f'data-testid="withdrawal-account-name">{MASKED}<' in page
        assert HOLDER not in page


def test_the_name_is_not_an_admin_search_field() -> None:
    for admin_class in (SupplierWithdrawalAdmin, ResellerWithdrawalAdmin):
        assert not [field for field in admin_class.search_fields if "account_name" in field]
