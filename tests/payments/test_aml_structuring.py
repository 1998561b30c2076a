"""Structuring (拆分充值): top-ups just under the review threshold, or several summing above a limit, in a window."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from kameng.ledger.selectors import wallet_balance
from kameng.payments.aml_selectors import wallet_held_balance
from kameng.payments.models import AmlReason, AmlReview, Payment
from tests.factories import UserFactory
from tests.payments.aml_support import paid_topup, policy

pytestmark = pytest.mark.django_db


def test_the_third_topup_at_80_percent_within_a_day_is_held_as_structuring() -> None:
    policy()
    buyer = UserFactory.create()
    paid_topup(buyer, "4000.00")
    paid_topup(buyer, "4000.00")
    assert not AmlReview.objects.exists()

    third = paid_topup(buyer, "4000.00")

    review = AmlReview.objects.get()
    assert (review.payment_id, review.reason, review.amount) == (third.pk, AmlReason.STRUCTURING, Decimal("4000.00"))
    assert review.get_reason_display() == "疑似拆分充值"
    assert review.reason_detail.startswith("疑似拆分充值")
    assert wallet_balance(user_id=buyer.pk) == Decimal("8000.00")
    assert wallet_held_balance(user_id=buyer.pk) == Decimal("4000.00")


def test_a_third_topup_one_fen_under_80_percent_is_credited() -> None:
    policy()
    buyer = UserFactory.create()
    paid_topup(buyer, "4000.00")
    paid_topup(buyer, "4000.00")

    paid_topup(buyer, "3999.99")

    assert not AmlReview.objects.exists()
    assert wallet_balance(user_id=buyer.pk) == Decimal("11999.99")


def test_earlier_topups_under_80_percent_do_not_count() -> None:
    policy()
    buyer = UserFactory.create()
    paid_topup(buyer, "3999.99")
    paid_topup(buyer, "4000.00")

    paid_topup(buyer, "4000.00")

    assert not AmlReview.objects.exists()


def test_topups_older_than_the_window_do_not_count() -> None:
    policy()
    buyer = UserFactory.create()
    old = paid_topup(buyer, "4500.00")
    Payment.objects.filter(pk=old.pk).update(paid_at=timezone.now() - timedelta(hours=24, seconds=1))
    paid_topup(buyer, "4500.00")

    paid_topup(buyer, "4500.00")

    assert not AmlReview.objects.exists()


def test_other_buyers_topups_do_not_count() -> None:
    policy()
    paid_topup(UserFactory.create(), "4500.00")
    paid_topup(UserFactory.create(), "4500.00")

    paid_topup(UserFactory.create(), "4500.00")

    assert not AmlReview.objects.exists()


def test_a_daily_sum_above_the_limit_is_held_and_exactly_the_limit_is_not() -> None:
    policy(structuring_count=0, structuring_daily_sum=Decimal("10000.00"))
    buyer = UserFactory.create()
    paid_topup(buyer, "3000.00")
    paid_topup(buyer, "3000.00")
    paid_topup(buyer, "4000.00")  # 10,000.00 in all: not above the limit
    assert not AmlReview.objects.exists()

    last = paid_topup(buyer, "0.01")

    review = AmlReview.objects.get()
    assert (review.payment_id, review.reason) == (last.pk, AmlReason.STRUCTURING)
    assert "10,000.01" in review.reason_detail
    assert wallet_balance(user_id=buyer.pk) == Decimal("10000.00")
    assert wallet_held_balance(user_id=buyer.pk) == Decimal("0.01")


@override_settings(KAMENG_AML_REVIEW_THRESHOLD="1000.00", KAMENG_AML_STRUCTURING_DAILY_SUM="0")
def test_without_a_policy_row_the_settings_apply() -> None:
    buyer = UserFactory.create()
    paid_topup(buyer, "1000.00")
    assert not AmlReview.objects.exists()

    paid_topup(buyer, "1000.01")

    assert AmlReview.objects.get().reason == AmlReason.SINGLE_OVER_THRESHOLD


def test_a_staff_policy_raises_the_threshold() -> None:
    policy(threshold=Decimal("20000.00"))
    buyer = UserFactory.create()

    paid_topup(buyer, "19999.99")

    assert not AmlReview.objects.exists()
