"""The payments selectors answer a number or code not shaped like one without asking the database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pytest_django import DjangoAssertNumQueries

from kameng.core.ids import is_public_number
from kameng.payments.models import ChannelKind, Payment, PaymentChannel, PaymentPurpose
from kameng.payments.selectors import channel_enabled, payment_of_user
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("number", ["", "\x00", "P\x00", "P2611261439051230482130\x00", "P" * 33, "P 1", "P\u2028",
                                    "Ｐ1", "P1é", "P1\n"])
def test_a_number_not_shaped_like_a_payment_number_is_not_found_without_a_query(
        number: str, django_assert_num_queries: DjangoAssertNumQueries) -> None:
    with django_assert_num_queries(0):
        assert payment_of_user(user_id=1, number=number) is None
    assert not is_public_number(number)


@pytest.mark.parametrize("code", ["", "\x00", "epay\x00", "e" * 41, "ep ay", "易支付"])
def test_a_code_not_shaped_like_a_channel_code_is_not_found_without_a_query(
        code: str, django_assert_num_queries: DjangoAssertNumQueries) -> None:
    with django_assert_num_queries(0):
        assert channel_enabled(code=code) is None


def test_well_shaped_numbers_and_codes_are_still_found() -> None:
    buyer = UserFactory.create()
    channel = PaymentChannel.objects.create(code="epay_v1-main", name="易支付", kind=ChannelKind.EPAY_V1,
                                            gateway_url="https://pay.example.com/", merchant_id="1001",
                                            merchant_key="k" * 32)
    generated = Payment.objects.create(number="P261126143905123048213", user=buyer, channel=channel,
                                       purpose=PaymentPurpose.WALLET_TOPUP, amount=Decimal("1.00"))
    hyphenated = Payment.objects.create(number="P-K261126-2", user=buyer, channel=channel,
                                        purpose=PaymentPurpose.WALLET_TOPUP, amount=Decimal("1.00"))

    assert payment_of_user(user_id=buyer.pk, number=generated.number) == generated
    assert payment_of_user(user_id=buyer.pk, number=hyphenated.number) == hyphenated
    assert payment_of_user(user_id=buyer.pk + 1, number=generated.number) is None
    assert channel_enabled(code="epay_v1-main") == channel
