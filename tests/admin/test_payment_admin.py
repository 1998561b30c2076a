"""The payment list in the back office: a closed payment says 已关闭, why and what the gateway answered; staff may
ask the gateway again about a payment (a closed one a buyer says they paid after all is then credited, once)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from kameng.accounts.models import User
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.payments import reconciliation
from kameng.payments.gateways.base import GatewayError, QueryResult
from kameng.payments.models import (
    ChannelKind,
    Payment,
    PaymentChannel,
    PaymentCloseReason,
    PaymentPurpose,
    PaymentStatus,
)
from kameng.payments.reconciliation import payment_close
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _closed_topup(number: str = "P0001", amount: str = "18.00") -> Payment:
    channel = PaymentChannel.objects.get_or_create(
        code="epay", defaults={"name": "易支付", "kind": ChannelKind.EPAY_V1, "gateway_url": "https://pay.example.com/",
                               "merchant_id": "1001", "merchant_key": "k" * 32})[0]
    payment = Payment.objects.create(number=number, user=UserFactory.create(), channel=channel,
                                     purpose=PaymentPurpose.WALLET_TOPUP, amount=Decimal(amount))
    assert payment_close(payment_id=payment.pk, reason=PaymentCloseReason.TOPUP_UNPAID,
                         detail="最终查询：未支付；该通道没有关单接口")
    return payment


def _answering(monkeypatch: pytest.MonkeyPatch, answer: object) -> list[str]:
    asked: list[str] = []

    class Gateway:
        def query(self, *, out_trade_no: str) -> QueryResult:
            asked.append(out_trade_no)
            if isinstance(answer, Exception):
                raise answer
            assert isinstance(answer, QueryResult)
            return answer

    monkeypatch.setattr(reconciliation, "gateway_for", lambda channel: Gateway())
    return asked


def _recheck(client: Client, *payments: Payment) -> str:
    response = client.post(reverse("admin:payments_payment_changelist"),
                           {"action": "recheck_with_gateway", "_selected_action": [p.pk for p in payments]},
                           follow=True)
    assert response.status_code == 200
    return str(response.content.decode())


def test_a_closed_payment_shows_its_status_reason_and_detail(admin_client: Client) -> None:
    payment = _closed_topup()

    listing = admin_client.get(reverse("admin:payments_payment_changelist")).content.decode()
    change = admin_client.get(reverse("admin:payments_payment_change", args=[payment.pk])).content.decode()

    assert "已关闭" in listing
    assert "长时间未收到付款" in listing
    for text in ("已关闭", "长时间未收到付款", "最终查询：未支付；该通道没有关单接口", "关闭时间"):
        assert text in change
    filtered = admin_client.get(reverse("admin:payments_payment_changelist"), {"close_reason": "topup_unpaid"})
    assert payment.number in filtered.content.decode()


def test_asking_the_gateway_again_credits_a_closed_payment_paid_after_all_once(
        admin_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    payment = _closed_topup()
    unpaid = _closed_topup(number="P0002")
    asked = _answering(monkeypatch, QueryResult(is_paid=True, amount=Decimal("18.00"), gateway_trade_no="T9"))

    first = _recheck(admin_client, payment)
    again = _recheck(admin_client, payment)

    assert "P0001：已到账，已入账" in first
    assert "P0001：早已入账，未重复入账" in again
    assert asked == ["P0001"]  # a credited payment is not asked about again
    payment.refresh_from_db()
    assert (payment.status, payment.gateway_trade_no) == (PaymentStatus.SUCCEEDED, "T9")
    assert wallet_balance(user_id=payment.user_id) == Decimal("18.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).count() == 1
    unpaid.refresh_from_db()
    assert unpaid.status == PaymentStatus.CLOSED


def test_asking_an_unreachable_gateway_says_so_and_changes_nothing(
        admin_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    payment = _closed_topup()
    _answering(monkeypatch, GatewayError("支付网关查询失败", code="gateway_unreachable"))

    page = _recheck(admin_client, payment)

    assert "P0001：查询失败（支付网关查询失败）" in page
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CLOSED


def test_staff_without_the_permission_cannot_ask(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    payment = _closed_topup()
    asked = _answering(monkeypatch, QueryResult(is_paid=True, amount=Decimal("18.00"), gateway_trade_no="T9"))
    viewer = UserFactory.create(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client.force_login(User.objects.get(pk=viewer.pk))

    listing = client.get(reverse("admin:payments_payment_changelist")).content.decode()
    client.post(reverse("admin:payments_payment_changelist"),
                {"action": "recheck_with_gateway", "_selected_action": [payment.pk]})

    assert "recheck_with_gateway" not in listing
    assert asked == []
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CLOSED
