"""Supplier settlement on delivery: cost to the payable less tax withheld, exact to the fen, once per order and
supplier; refunds reversed proportionally by new journals, never below zero (the rest becomes the supplier's debt)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from kameng.ledger.models import AccountKind, Journal, JournalKind
from kameng.suppliers.models import SettlementMovement, SupplierSettlement, SupplierWithdrawal
from kameng.suppliers.settlement import order_suppliers_settle, settlement_aftercare, settlements_sweep, tax_of
from kameng.suppliers.withdrawals import supplier_withdrawal_request
from tests.factories import SkuFactory, SupplierFactory, UserFactory, fund_wallet, stock_sku
from tests.suppliers.money_support import (
    Capture,
    balance,
    card_key_order,
    refund,
    settling,
    tax_withheld,
    topup_order,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("settling")]
PAYABLE, DEBT = AccountKind.SUPPLIER_PAYABLE, AccountKind.SUPPLIER_DEBT
__all__ = ["settling"]


def _journals() -> list[tuple[str, str]]:
    return list(Journal.objects.filter(kind__startswith="supplier_settlement").order_by("pk")
                .values_list("kind", "reference"))


def test_a_card_key_order_credits_the_supplier_its_cost_less_tax(django_capture_on_commit_callbacks: Capture) -> None:
    supplier = SupplierFactory.create(tax_rate=Decimal("0.03"))

    order = card_key_order(django_capture_on_commit_callbacks, supplier=supplier, cost="97.00")

    assert balance(supplier, PAYABLE) == Decimal("94.09")
    assert tax_withheld() == Decimal("2.91")
    assert balance(supplier, DEBT) == Decimal("0.00")
    assert _journals() == [(JournalKind.SUPPLIER_SETTLEMENT, f"order:{order.number}:supplier:{supplier.pk}:1")]
    record = SupplierSettlement.objects.get()
    assert (record.delivered_cost, record.cost, record.tax, record.tax_rate) == (
        Decimal("97.00"), Decimal("97.00"), Decimal("2.91"), Decimal("0.0300"))


def test_several_keys_add_up_and_the_buyer_wallet_of_the_supplier_is_untouched(
        django_capture_on_commit_callbacks: Capture) -> None:
    supplier = SupplierFactory.create(tax_rate=Decimal("0.01"))

    card_key_order(django_capture_on_commit_callbacks, supplier=supplier, cost="9.35", quantity=3, price="10.00")

    assert tax_withheld() == Decimal("0.28")  # 28.05 × 1% = 0.2805 → 0.28
    assert balance(supplier, PAYABLE) == Decimal("27.77")
    assert balance(supplier, AccountKind.WALLET) == Decimal("0.00")


def test_a_direct_topup_credits_the_succeeded_attempt_supplier(django_capture_on_commit_callbacks: Capture) -> None:
    supplier = SupplierFactory.create(tax_rate=Decimal("0.03"))

    topup_order(django_capture_on_commit_callbacks, supplier=supplier, cost="49.50", price="50.00")

    assert tax_withheld() == Decimal("1.49")  # 1.485 → 1.49, half up
    assert balance(supplier, PAYABLE) == Decimal("48.01")


def test_platform_stock_settles_nothing(django_capture_on_commit_callbacks: Capture) -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1)
    buyer = UserFactory.create()
    fund_wallet(buyer, "10.00")
    from kameng.purchases.services import PayBy, PaymentChoice, purchase_create

    with django_capture_on_commit_callbacks(execute=True):
        purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="p-1",
                        payment=PaymentChoice(PayBy.WALLET))

    assert SupplierSettlement.objects.count() == 0
    assert _journals() == []


def test_settling_again_posts_nothing(django_capture_on_commit_callbacks: Capture) -> None:
    supplier = SupplierFactory.create(tax_rate=Decimal("0.03"))
    order = card_key_order(django_capture_on_commit_callbacks, supplier=supplier, cost="97.00")

    settlement_aftercare(order_ids=[order.pk], event="delivered")
    order_suppliers_settle(order_id=order.pk)
    assert settlements_sweep() == 1

    assert len(_journals()) == 1
    assert balance(supplier, PAYABLE) == Decimal("94.09")


def test_the_sweeper_settles_an_order_the_listener_missed(django_capture_on_commit_callbacks: Capture,
                                                          settings: object) -> None:
    settings.KAMENG_ORDER_AFTERCARE = []  # type: ignore[attr-defined]
    supplier = SupplierFactory.create(tax_rate=Decimal("0.03"))
    card_key_order(django_capture_on_commit_callbacks, supplier=supplier, cost="97.00")
    assert balance(supplier, PAYABLE) == Decimal("0.00")

    assert settlements_sweep() == 1

    assert balance(supplier, PAYABLE) == Decimal("94.09")
    assert tax_withheld() == Decimal("2.91")


def test_a_later_rate_change_does_not_change_the_reversal(django_capture_on_commit_callbacks: Capture) -> None:
    supplier = SupplierFactory.create(tax_rate=Decimal("0.03"))
    order = card_key_order(django_capture_on_commit_callbacks, supplier=supplier, cost="97.00")
    supplier.tax_rate = Decimal("0.01")
    supplier.save()

    refund(django_capture_on_commit_callbacks, order, "100.00", "rf-1")

    assert (balance(supplier, PAYABLE), tax_withheld()) == (Decimal("0.00"), Decimal("0.00"))


def test_partial_then_full_refund_reverse_proportionally(django_capture_on_commit_callbacks: Capture) -> None:
    supplier = SupplierFactory.create(tax_rate=Decimal("0.03"))
    order = card_key_order(django_capture_on_commit_callbacks, supplier=supplier, cost="97.00")

    refund(django_capture_on_commit_callbacks, order, "25.00", "rf-1")  # kept 75% → cost 72.75, tax 2.18

    assert balance(supplier, PAYABLE) == Decimal("70.57")
    assert tax_withheld() == Decimal("2.18")
    reversal = SettlementMovement.objects.get(kind="reversal")
    assert (reversal.cost, reversal.tax, reversal.payable, reversal.debt) == (
        Decimal("24.25"), Decimal("0.73"), Decimal("23.52"), Decimal("0.00"))

    refund(django_capture_on_commit_callbacks, order, "75.00", "rf-2")
    settlement_aftercare(order_ids=[order.pk], event="refunded")  # heard again: nothing more

    assert (balance(supplier, PAYABLE), tax_withheld()) == (Decimal("0.00"), Decimal("0.00"))
    assert [kind for kind, _ in _journals()] == [JournalKind.SUPPLIER_SETTLEMENT,
                                                 JournalKind.SUPPLIER_SETTLEMENT_REVERSAL,
                                                 JournalKind.SUPPLIER_SETTLEMENT_REVERSAL]
    record = SupplierSettlement.objects.get()
    assert (record.cost, record.tax, record.journals) == (Decimal("0.00"), Decimal("0.00"), 3)


def test_a_refund_after_withdrawal_becomes_debt_paid_down_by_the_next_settlement(
        django_capture_on_commit_callbacks: Capture, settings: object) -> None:
    settings.KAMENG_SUPPLIER_WITHDRAWAL_MIN = "1.00"  # type: ignore[attr-defined]
    supplier = SupplierFactory.create(tax_rate=Decimal("0.03"))
    order = card_key_order(django_capture_on_commit_callbacks, supplier=supplier, cost="97.00")
    supplier_withdrawal_request(supplier_id=supplier.pk, amount=Decimal("90.00"), bank_name="工商银行",
                                account_name="某某公司", account_number="6222020200112233445")

    refund(django_capture_on_commit_callbacks, order, "100.00", "rf-1")

    # 97.00 back: 2.91 tax, 4.09 left in the payable, 90.00 already withdrawn → the supplier's debt.
    assert balance(supplier, PAYABLE) == Decimal("0.00")
    assert balance(supplier, DEBT) == Decimal("90.00")
    assert SupplierWithdrawal.objects.get().amount == Decimal("90.00")

    card_key_order(django_capture_on_commit_callbacks, supplier=supplier, cost="97.00", request_id="r-2")

    assert balance(supplier, DEBT) == Decimal("0.00")
    assert balance(supplier, PAYABLE) == Decimal("4.09")  # 94.09 − 90.00 of debt
    assert tax_withheld() == Decimal("2.91")


def test_tax_is_rounded_half_up_to_the_fen() -> None:
    assert tax_of(Decimal("97.00"), Decimal("0.03")) == Decimal("2.91")
    assert tax_of(Decimal("0.50"), Decimal("0.03")) == Decimal("0.02")  # 0.015 → 0.02
    assert tax_of(Decimal("0.49"), Decimal("0.03")) == Decimal("0.01")  # 0.0147 → 0.01
    assert tax_of(Decimal("10.00"), Decimal("0")) == Decimal("0.00")


def test_a_zero_rate_supplier_gets_the_whole_cost(django_capture_on_commit_callbacks: Capture) -> None:
    supplier = SupplierFactory.create(tax_rate=Decimal("0"))

    card_key_order(django_capture_on_commit_callbacks, supplier=supplier, cost="97.00")

    assert balance(supplier, PAYABLE) == Decimal("97.00")
    assert tax_withheld() == Decimal("0.00")


@hypothesis_settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cost=st.integers(min_value=1, max_value=20000), rate=st.sampled_from(["0", "0.01", "0.03", "0.06"]),
       refunds=st.lists(st.integers(min_value=1, max_value=9999), max_size=3))
def test_any_refund_sequence_keeps_the_tax_of_the_kept_cost_and_ends_at_zero(
        django_capture_on_commit_callbacks: Capture, cost: int, rate: str, refunds: list[int]) -> None:
    """Property: after every refund the booked cost is the kept share of the delivered cost and the booked tax is
    exactly the tax of it; the supplier's payable and the tax account hold what is booked; a full refund ends at 0."""
    supplier = SupplierFactory.create(tax_rate=Decimal(rate))
    delivered = Decimal(cost) / 100
    order = card_key_order(django_capture_on_commit_callbacks, supplier=supplier, cost=str(delivered),
                           request_id=f"h-{supplier.pk}")
    tax_before = tax_withheld()
    paid = order.total_amount
    for index, fen in enumerate(refunds):
        order.refresh_from_db()
        amount = min(Decimal(fen) / 100, paid - order.refunded_amount)
        if amount <= 0:
            break
        refund(django_capture_on_commit_callbacks, order, str(amount), f"h-{supplier.pk}-{index}")
        order.refresh_from_db()
        record = SupplierSettlement.objects.get(order=order)
        kept = delivered * (paid - order.refunded_amount) / paid
        assert record.cost == kept.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        assert record.tax == tax_of(record.cost, Decimal(rate))
        assert balance(supplier, PAYABLE) == record.cost - record.tax
    order.refresh_from_db()
    if order.refunded_amount < paid:
        refund(django_capture_on_commit_callbacks, order, str(paid - order.refunded_amount), f"h-{supplier.pk}-end")
    assert (balance(supplier, PAYABLE), balance(supplier, DEBT)) == (Decimal("0.00"), Decimal("0.00"))
    assert SupplierSettlement.objects.get(order=order).tax == Decimal("0.00")
    assert tax_withheld() == tax_before - tax_of(delivered, Decimal(rate))
