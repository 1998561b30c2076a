"""A wallet top-up paid at the simulated 易支付 gateway, end to end through the Django test client.

Our payments code signs the request and verifies the notify; the simulator (its own signing code) verifies the
request and signs the notify. The notify travels through httpx, delivered into this process by a transport.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from pytest_django import DjangoCaptureOnCommitCallbacks as CaptureOnCommit

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.payments.gateways.base import IncomingNotification
from kameng.payments.gateways.epay import EpayV1Gateway
from kameng.payments.models import NotificationOutcome, PaymentNotification, PaymentStatus
from kameng.payments.services import wallet_topup_start
from kameng.simulators import services as simulator_services
from kameng.simulators.models import SimulatedEpayTrade, SimulatedTradeStatus
from kameng.simulators.services import simulated_epay_notify_send
from tests.factories import UserFactory
from tests.payments.support import (
    CHANNEL_CODE,
    KEY,
    PID,
    RETURN_URL,
    django_transport,
    epay_channel,
    epay_merchant,
    query_params,
)

pytestmark = pytest.mark.django_db


def test_topup_paid_at_the_simulator_credits_the_wallet_exactly_once(
        client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    monkeypatch.setattr(simulator_services, "notify_transport", django_transport())
    buyer = UserFactory.create()
    epay_merchant()
    epay_channel(gateway_url="http://testserver/sim/epay/")

    started = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="88.8",
                                 return_url=RETURN_URL, client_ip="203.0.113.7")
    assert started.start.redirect_url.startswith("http://testserver/sim/epay/submit.php?")
    assert query_params(started.start.redirect_url)["money"] == "88.80"

    cashier = client.get(started.start.redirect_url)
    assert cashier.status_code == 200
    html = cashier.content.decode()
    assert "¥88.80" in html
    assert f"钱包充值 ¥{started.payment.amount}" in html
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = client.post(match.group(1))

    payment = started.payment
    payment.refresh_from_db()
    trade = SimulatedEpayTrade.objects.get()
    assert (trade.out_trade_no, trade.money, trade.status) == (payment.number, Decimal("88.80"),
                                                               SimulatedTradeStatus.PAID)
    assert (trade.notify_attempts, trade.last_notify_response) == (1, "HTTP 200: success")
    assert trade.notified_at is not None
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.gateway_trade_no == trade.trade_no
    assert wallet_balance(user_id=buyer.pk) == Decimal("88.80")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    assert list(PaymentNotification.objects.values_list("outcome", flat=True)) == [NotificationOutcome.CREDITED]

    # The browser comes back with the same signed parameters, which our gateway code accepts.
    assert confirmed.status_code == 302
    assert confirmed["Location"].startswith(RETURN_URL + "?")
    gateway = EpayV1Gateway(gateway_url="http://testserver/sim/epay/", merchant_id=PID, merchant_key=KEY)
    returned = gateway.verify_notification(IncomingNotification(params=query_params(confirmed["Location"])))
    assert (returned.out_trade_no, returned.amount, returned.is_paid) == (payment.number, Decimal("88.80"), True)

    # The gateway sends the notify again (a retry after a lost "success"): nothing more is credited.
    again = simulated_epay_notify_send(trade_id=trade.pk, is_forced=True)
    assert again.is_delivered
    assert wallet_balance(user_id=buyer.pk) == Decimal("88.80")
    assert list(PaymentNotification.objects.order_by("id").values_list("outcome", flat=True)) == [
        NotificationOutcome.CREDITED, NotificationOutcome.DUPLICATE]
    assert ledger_problems() == []


def test_topup_cancelled_at_the_cashier_credits_nothing(client: Client) -> None:
    buyer = UserFactory.create()
    epay_merchant()
    epay_channel()
    started = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="10",
                                 return_url=RETURN_URL)
    client.get(started.start.redirect_url)
    trade = SimulatedEpayTrade.objects.get()

    assert client.get(f"/sim/epay/cashier/{trade.trade_no}/cancel/").status_code == 200

    started.payment.refresh_from_db()
    assert started.payment.status == PaymentStatus.PENDING
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert not PaymentNotification.objects.exists()


def test_channel_with_a_key_the_gateway_does_not_know_is_refused_at_submit(client: Client) -> None:
    buyer = UserFactory.create()
    epay_merchant()
    epay_channel(key="a-different-key")
    started = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="10",
                                 return_url=RETURN_URL)

    response = client.get(started.start.redirect_url)

    assert response.status_code == 400
    assert "签名校验失败" in response.content.decode()
    assert not SimulatedEpayTrade.objects.exists()
