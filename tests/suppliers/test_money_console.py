"""The supplier console's money pages: statements with downloads, the withdrawal form and history, each scoped to
the logged-in supplier (another supplier's withdrawal answers 404), bad input refused with nothing moved."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from kameng.ledger.models import AccountKind
from kameng.suppliers.exports import xlsx_rows
from kameng.suppliers.models import SupplierWithdrawal
from kameng.suppliers.withdrawals import supplier_withdrawal_request
from tests.factories import SupplierFactory, UserFactory
from tests.suppliers.money_support import Capture, balance, card_key_order, credit_payable, settling

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("settling")]
__all__ = ["settling"]


def _form(amount: str, request_id: str = "req-1", **fields: str) -> dict[str, str]:
    return {"amount": amount, "bank_name": "工商银行", "account_name": "某某公司",
            "account_number": "6222020200112233445", "request_id": request_id, **fields}


def test_the_statements_page_and_its_downloads_show_this_months_figures(
        client: Client, django_capture_on_commit_callbacks: Capture) -> None:
    supplier = SupplierFactory.create(tax_rate=Decimal("0.03"))
    card_key_order(django_capture_on_commit_callbacks, supplier=supplier, cost="97.00")
    client.force_login(supplier.owner)

    page = client.get("/supplier/statements/")

    assert page.status_code == 200
    body = page.content.decode()
    assert "¥94.09" in body
    assert "¥2.91" in body
    month = page.context["statements"][0].month.strftime("%Y-%m")
    xlsx = client.get(f"/supplier/statements/{month}.xlsx")
    assert xlsx.status_code == 200
    rows = xlsx_rows(xlsx.content)
    assert rows[1] == ["期初应付", "0.00", "期末应付", "94.09"]
    assert rows[8][1:] == ["结算", rows[8][2], "97.00", "2.91", "94.09", "0.00"]
    csv = client.get(f"/supplier/statements/{month}.csv")
    assert csv["Content-Type"].startswith("text/csv")
    assert "94.09" in csv.content.decode("utf-8-sig")
    assert client.get("/supplier/statements/2026-13.csv").status_code == 404
    assert client.get(f"/supplier/statements/{month}.pdf").status_code == 404


def test_a_withdrawal_is_requested_from_the_form_and_shown_masked(client: Client) -> None:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "500.00")
    client.force_login(supplier.owner)

    response = client.post("/supplier/withdrawals/", _form("300.00"))
    again = client.post("/supplier/withdrawals/", _form("300.00"))  # the same form sent twice

    withdrawal = SupplierWithdrawal.objects.get()
    assert response.status_code == 302
    assert again["Location"] == response["Location"]
    assert response["Location"] == f"/supplier/withdrawals/{withdrawal.number}/"
    assert balance(supplier, AccountKind.SUPPLIER_PAYABLE) == Decimal("200.00")
    detail = client.get(response["Location"]).content.decode()
    assert "**** 3445" in detail
    assert "6222020200112233445" not in detail
    listing = client.get("/supplier/withdrawals/").content.decode()
    assert "**** 3445" in listing
    assert "6222020200112233445" not in listing
    assert "¥200.00" in listing


@pytest.mark.parametrize(("amount", "status", "message"), [
    ("600.00", 409, "可提现余额不足"),
    ("abc", 400, "请输入有效的金额"),
    ("50.00", 400, "提现金额不能低于 ¥100.00"),
])
def test_a_refused_request_says_why_and_moves_nothing(client: Client, amount: str, status: int,
                                                      message: str) -> None:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "500.00")
    client.force_login(supplier.owner)

    response = client.post("/supplier/withdrawals/", _form(amount))

    assert response.status_code == status
    assert message in response.content.decode()
    assert SupplierWithdrawal.objects.count() == 0
    assert balance(supplier, AccountKind.SUPPLIER_PAYABLE) == Decimal("500.00")


def test_another_suppliers_withdrawal_is_404_and_buyers_see_no_money_pages(client: Client) -> None:
    other = SupplierFactory.create()
    credit_payable(other, "500.00")
    theirs = supplier_withdrawal_request(supplier_id=other.pk, amount=Decimal("300.00"), bank_name="工商银行",
                                         account_name="某某公司", account_number="6222020200112233445")
    me = SupplierFactory.create()
    client.force_login(me.owner)

    assert client.get(f"/supplier/withdrawals/{theirs.number}/").status_code == 404
    assert theirs.number not in client.get("/supplier/withdrawals/").content.decode()
    client.force_login(UserFactory.create())
    assert client.get("/supplier/statements/").status_code == 404
    assert client.get("/supplier/withdrawals/").status_code == 404
