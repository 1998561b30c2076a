"""The top-up form says what is wrong with the amount in the shop's words, in either language."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from kameng.payments.models import ChannelKind, Payment, PaymentChannel
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyer_client(client: Client) -> Client:
    client.force_login(UserFactory.create())
    PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                  gateway_url="https://pay.example.com/", merchant_id="1001", merchant_key="k" * 32)
    return client


@pytest.mark.parametrize("amount", ["", "1" * 13])
def test_an_empty_or_overlong_amount_asks_for_a_valid_one(buyer_client: Client, amount: str) -> None:
    response = buyer_client.post(reverse("web:topup"), {"channel": "epay", "amount": amount})

    page = response.content.decode()
    assert response.status_code == 400
    assert "请输入有效的金额" in page
    assert "这个字段是必填项" not in page
    assert Payment.objects.count() == 0


def test_an_empty_amount_is_explained_in_english(buyer_client: Client) -> None:
    buyer_client.post(reverse("set_language"), {"language": "en", "next": "/"})

    response = buyer_client.post(reverse("web:topup"), {"channel": "epay", "amount": ""})

    assert response.status_code == 400
    assert "Please enter a valid amount" in response.content.decode()
