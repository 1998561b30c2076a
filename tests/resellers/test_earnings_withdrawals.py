"""Commission withdrawals: request (commission → in review), staff pay (→ payout clearing) or reject (back), 转入余额
(commission → wallet at once); exact ledger figures; spent commissions marked withdrawn oldest first; the admin's
review pages, the commission settings and the staff-set inviter."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from kameng.core.errors import ApplicationError, ConflictError
from kameng.ledger.models import AccountKind, JournalKind
from kameng.resellers.commission_withdrawals import (
    commission_to_wallet,
    commission_withdrawal_pay,
    commission_withdrawal_reject,
    commission_withdrawal_request,
)
from kameng.resellers.earnings import earnings_release_due
from kameng.resellers.models import (
    Earning,
    EarningState,
    Referral,
    ReferralSource,
    Reseller,
    ResellerStatus,
    ResellerWithdrawal,
    ResellerWithdrawalStatus,
)
from kameng.resellers.referrals import referral_set_by_staff
from tests.factories import UserFactory
from tests.resellers.earnings_support import (
    Capture,
    buy,
    earning,
    invited_by,
    journal_kinds,
    later,
    owner_balance,
    reseller,
    system_balance,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("earning")]
__all__ = ["earning"]
ACCOUNT = "6222020200112233445"


def _earned(capture: Capture, *prices: str) -> tuple[Reseller, list[Earning]]:
    """A reseller whose invitee bought once per price; its commissions (5 % each) released."""
    user = reseller()
    buyer = invited_by(UserFactory.create(), user)
    for price in prices:
        buy(capture, buyer, price=price)
    earnings_release_due(now=later())
    return Reseller.objects.get(user=user), list(Earning.objects.filter(beneficiary=user).order_by("pk"))


def _request(seller: Reseller, amount: str, **kwargs: Any) -> ResellerWithdrawal:
    return commission_withdrawal_request(reseller_id=seller.pk, amount=Decimal(amount), bank_name="工商银行",
                                         account_name="张三", account_number=ACCOUNT, **kwargs)


def test_pay_moves_the_money_to_payout_clearing(django_capture_on_commit_callbacks: Capture) -> None:
    seller, earnings = _earned(django_capture_on_commit_callbacks, "2000.00", "3000.00", "1000.00")
    staff = UserFactory.create(is_staff=True)
    assert owner_balance(seller.user, AccountKind.RESELLER_COMMISSION) == Decimal("300.00")

    withdrawal = _request(seller, "250.00")
    assert owner_balance(seller.user, AccountKind.RESELLER_COMMISSION) == Decimal("50.00")
    assert system_balance(AccountKind.RESELLER_WITHDRAWALS_IN_REVIEW) == Decimal("250.00")
    assert ResellerWithdrawal.objects.get().account_number == ACCOUNT  # stored encrypted, read back whole

    commission_withdrawal_pay(withdrawal_id=withdrawal.pk, reviewer_id=staff.pk, transfer_reference="ICBC-1")

    assert system_balance(AccountKind.RESELLER_WITHDRAWALS_IN_REVIEW) == Decimal("0.00")
    # Payout clearing is debit-normal: the ¥250 that left by bank transfer shows as its credit.
    assert system_balance(AccountKind.RESELLER_PAYOUT_CLEARING) == Decimal("-250.00")
    assert journal_kinds()[-2:] == [JournalKind.COMMISSION_WITHDRAWAL, JournalKind.COMMISSION_WITHDRAWAL_PAID]
    # ¥100 + ¥150 are covered by the ¥250 paid; the ¥50 one is still available.
    assert [Earning.objects.get(pk=row.pk).state for row in earnings] == [
        EarningState.WITHDRAWN, EarningState.WITHDRAWN, EarningState.AVAILABLE]
    with pytest.raises(ConflictError):
        commission_withdrawal_reject(withdrawal_id=withdrawal.pk, reviewer_id=staff.pk, reason="晚了")


def test_reject_gives_the_money_back(django_capture_on_commit_callbacks: Capture) -> None:
    seller, _ = _earned(django_capture_on_commit_callbacks, "4000.00")
    withdrawal = _request(seller, "200.00")

    commission_withdrawal_reject(withdrawal_id=withdrawal.pk, reviewer_id=None, reason="户名不符")

    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.rejection_reason) == (ResellerWithdrawalStatus.REJECTED, "户名不符")
    assert owner_balance(seller.user, AccountKind.RESELLER_COMMISSION) == Decimal("200.00")
    assert system_balance(AccountKind.RESELLER_WITHDRAWALS_IN_REVIEW) == Decimal("0.00")
    assert system_balance(AccountKind.RESELLER_PAYOUT_CLEARING) == Decimal("0.00")
    assert Earning.objects.get().state == EarningState.AVAILABLE


def test_to_wallet_moves_commission_into_the_wallet_at_once(django_capture_on_commit_callbacks: Capture) -> None:
    seller, _ = _earned(django_capture_on_commit_callbacks, "100.00", "60.00")

    transfer = commission_to_wallet(reseller_id=seller.pk, amount=Decimal("5.00"))

    assert transfer.status == ResellerWithdrawalStatus.PAID
    assert owner_balance(seller.user, AccountKind.RESELLER_COMMISSION) == Decimal("3.00")
    assert owner_balance(seller.user, AccountKind.WALLET) == Decimal("5.00")
    assert journal_kinds()[-1] == JournalKind.COMMISSION_TO_WALLET
    assert list(Earning.objects.order_by("pk").values_list("state", flat=True)) == [
        EarningState.WITHDRAWN, EarningState.AVAILABLE]


def test_refusals_leave_the_balance_alone(django_capture_on_commit_callbacks: Capture) -> None:
    seller, _ = _earned(django_capture_on_commit_callbacks, "4000.00")

    with pytest.raises(ApplicationError) as below:
        _request(seller, "99.99")
    with pytest.raises(ConflictError) as above:
        _request(seller, "200.01")
    with pytest.raises(ApplicationError) as account:
        commission_withdrawal_request(reseller_id=seller.pk, amount=Decimal("150.00"), bank_name="工商银行",
                                      account_name="张三", account_number="12ab")
    with pytest.raises(ConflictError) as too_much:
        commission_to_wallet(reseller_id=seller.pk, amount=Decimal("200.01"))
    Reseller.objects.filter(pk=seller.pk).update(status=ResellerStatus.SUSPENDED)
    with pytest.raises(ConflictError) as suspended:
        _request(seller, "150.00")

    assert [error.value.code for error in (below, above, account, too_much, suspended)] == [
        "withdrawal_below_minimum", "withdrawal_exceeds_balance", "bank_account_invalid",
        "withdrawal_exceeds_balance", "reseller_not_active"]
    assert owner_balance(seller.user, AccountKind.RESELLER_COMMISSION) == Decimal("200.00")
    assert not ResellerWithdrawal.objects.exists()


def test_the_same_request_id_answers_the_same_withdrawal(django_capture_on_commit_callbacks: Capture) -> None:
    seller, _ = _earned(django_capture_on_commit_callbacks, "4000.00")

    first = _request(seller, "150.00", request_id="form-1")
    again = _request(seller, "150.00", request_id="form-1")

    assert first.pk == again.pk
    assert owner_balance(seller.user, AccountKind.RESELLER_COMMISSION) == Decimal("50.00")


def test_staff_review_pages_pay_and_reject(admin_client: Client, django_capture_on_commit_callbacks: Capture) -> None:
    seller, _ = _earned(django_capture_on_commit_callbacks, "6000.00")
    to_pay, to_reject = _request(seller, "100.00"), _request(seller, "120.00")
    change = admin_client.get(reverse("admin:resellers_resellerwithdrawal_change", args=[to_pay.pk])).content.decode()
    pay_url = reverse("admin:resellers_resellerwithdrawal_pay", args=[to_pay.pk])
    assert pay_url in change
    assert ACCOUNT not in change
    assert ACCOUNT in admin_client.get(pay_url).content.decode()

    unconfirmed = admin_client.post(pay_url, {"transfer_reference": "ICBC-9"})
    paid = admin_client.post(pay_url, {"transfer_reference": "ICBC-9", "confirm": "on"})
    rejected = admin_client.post(reverse("admin:resellers_resellerwithdrawal_reject", args=[to_reject.pk]),
                                 {"reason": "账号有误"})

    assert (unconfirmed.status_code, paid.status_code, rejected.status_code) == (200, 302, 302)
    assert sorted(ResellerWithdrawal.objects.values_list("status", flat=True)) == [
        ResellerWithdrawalStatus.PAID, ResellerWithdrawalStatus.REJECTED]
    assert owner_balance(seller.user, AccountKind.RESELLER_COMMISSION) == Decimal("200.00")
    assert system_balance(AccountKind.RESELLER_PAYOUT_CLEARING) == Decimal("-100.00")


def test_staff_without_the_permission_cannot_review(client: Client,
                                                    django_capture_on_commit_callbacks: Capture) -> None:
    seller, _ = _earned(django_capture_on_commit_callbacks, "4000.00")
    withdrawal = _request(seller, "100.00")
    client.force_login(UserFactory.create(is_staff=True))

    response = client.post(reverse("admin:resellers_resellerwithdrawal_pay", args=[withdrawal.pk]),
                           {"transfer_reference": "X", "confirm": "on"})

    assert response.status_code in (302, 403)
    assert ResellerWithdrawal.objects.get().status == ResellerWithdrawalStatus.REQUESTED


def test_admin_lists_earnings_and_edits_the_commission_settings(
        admin_client: Client, django_capture_on_commit_callbacks: Capture) -> None:
    _earned(django_capture_on_commit_callbacks, "100.00")

    listing = admin_client.get(reverse("admin:resellers_earning_changelist"), {"state__exact": "available"})
    url = reverse("admin:resellers_commissionsettings_change", args=[1])  # the one row, made on first use
    add = admin_client.post(url, {
        "depth": "2", "level_1_rate": "30.00", "level_2_rate": "30.00", "level_3_rate": "0", "level_4_rate": "0",
        "level_5_rate": "0", "confirm_days": ""})
    ok = admin_client.post(url, {
        "depth": "2", "level_1_rate": "6.00", "level_2_rate": "3.00", "level_3_rate": "0", "level_4_rate": "0",
        "level_5_rate": "0", "confirm_days": "10"})

    assert listing.status_code == 200
    assert "5.00" in listing.content.decode()
    assert "不能超过 50%" in add.content.decode()
    assert admin_client.get(reverse("admin:resellers_commissionsettings_add")).status_code == 403
    assert ok.status_code == 302
    from kameng.resellers.models import CommissionSettings

    current = CommissionSettings.current()
    assert (current.rates(), current.period_days()) == ([Decimal("6.00"), Decimal("3.00")], 10)


def test_staff_set_an_inviter_but_never_a_cycle_or_self(admin_client: Client) -> None:
    top, middle, bottom = UserFactory.create(), UserFactory.create(), UserFactory.create()
    referral_set_by_staff(user_id=middle.pk, inviter_id=top.pk)
    referral_set_by_staff(user_id=bottom.pk, inviter_id=middle.pk)

    with pytest.raises(ApplicationError) as cycle:
        referral_set_by_staff(user_id=top.pk, inviter_id=bottom.pk)
    with pytest.raises(ApplicationError) as itself:
        referral_set_by_staff(user_id=top.pk, inviter_id=top.pk)
    page = admin_client.post(reverse("admin:resellers_referral_add"), {"user": top.pk, "inviter": bottom.pk})
    added = admin_client.post(reverse("admin:resellers_referral_add"),
                              {"user": top.pk, "inviter": UserFactory.create().pk})

    assert (cycle.value.code, itself.value.code) == ("referral_cycle", "referral_self")
    assert "循环" in page.content.decode()
    assert added.status_code == 302
    assert Referral.objects.get(user=top).source == ReferralSource.STAFF
    assert Referral.objects.get(user=bottom).source == ReferralSource.STAFF


def test_staff_changing_an_inviter_is_refused_when_it_makes_a_loop(admin_client: Client) -> None:
    top, bottom = UserFactory.create(), UserFactory.create()
    referral_set_by_staff(user_id=bottom.pk, inviter_id=top.pk)
    referral_set_by_staff(user_id=top.pk, inviter_id=UserFactory.create().pk)
    row = Referral.objects.get(user=top)

    page = admin_client.post(reverse("admin:resellers_referral_change", args=[row.pk]), {"inviter": bottom.pk})

    assert page.status_code == 200
    assert "循环" in page.content.decode()
    assert Referral.objects.get(user=top).inviter_id != bottom.pk
