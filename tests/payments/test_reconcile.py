"""Lost notify recovery: payments_reconcile_pending asks the simulated gateway's api.php over real HTTP.

The simulator runs in pytest-django's live server; the buyer's browser is an httpx client with cookies, so the
cashier's CSRF-protected form is exercised as a browser would.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone
from pytest_django.live_server_helper import LiveServer

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.payments.models import Payment, PaymentStatus
from kameng.payments.reconciliation import payments_reconcile_pending
from kameng.payments.services import wallet_topup_start
from kameng.simulators import services as simulator_services
from kameng.simulators.models import SimulatedEpayTrade, SimulatedTradeStatus
from kameng.simulators.services import NOTIFY_MAX_ATTEMPTS
from tests.factories import UserFactory
from tests.payments.support import (
    CHANNEL_CODE,
    RETURN_URL,
    epay_channel,
    epay_merchant,
    failing_transport,
)


def _start(user_id: int, amount: str) -> Payment:
    return wallet_topup_start(user_id=user_id, channel_code=CHANNEL_CODE, amount_text=amount,
                              return_url=RETURN_URL).payment


def _pay_in_browser(live_server: LiveServer, redirect_url: str) -> None:
    """Follow our redirect to the gateway's cashier and press 确认支付, like a buyer would."""
    with httpx.Client(timeout=10.0) as browser:
        cashier = browser.get(redirect_url)
        assert cashier.status_code == 200
        action = re.search(r'<form method="post" action="([^"]+)"', cashier.text)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', cashier.text)
        assert action
        assert token
        confirmed = browser.post(live_server.url + action.group(1), data={"csrfmiddlewaretoken": token.group(1)})
    assert confirmed.status_code == 302
    assert confirmed.headers["location"].startswith(RETURN_URL + "?")


def _age(*payments: Payment) -> None:
    Payment.objects.filter(pk__in=[payment.pk for payment in payments]).update(
        created_at=timezone.now() - timedelta(minutes=5))


@pytest.mark.django_db(transaction=True)
def test_paid_trade_whose_notify_was_lost_is_credited_by_reconciliation(
        live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator_services, "notify_transport", failing_transport())
    buyer = UserFactory.create()
    epay_merchant()
    epay_channel(gateway_url=live_server.url + "/sim/epay/")
    lost = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="66.60",
                              return_url=RETURN_URL)
    unpaid = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="10.00",
                                return_url=RETURN_URL)
    never_submitted = _start(buyer.pk, "20.00")
    with httpx.Client(timeout=10.0) as browser:  # the second buyer opens the cashier and walks away
        assert browser.get(unpaid.start.redirect_url).status_code == 200
    _pay_in_browser(live_server, lost.start.redirect_url)

    trade = SimulatedEpayTrade.objects.get(out_trade_no=lost.payment.number)
    assert trade.status == SimulatedTradeStatus.PAID
    assert trade.notify_attempts == NOTIFY_MAX_ATTEMPTS
    assert trade.notified_at is None
    lost.payment.refresh_from_db()
    assert lost.payment.status == PaymentStatus.PENDING
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert payments_reconcile_pending() == 0  # too recent: the notify may still be on its way

    _age(lost.payment, unpaid.payment, never_submitted)
    credited = payments_reconcile_pending()

    assert credited == 1
    lost.payment.refresh_from_db()
    assert lost.payment.status == PaymentStatus.SUCCEEDED
    assert lost.payment.gateway_trade_no == trade.trade_no
    assert wallet_balance(user_id=buyer.pk) == Decimal("66.60")
    assert set(Payment.objects.filter(status=PaymentStatus.PENDING).values_list("number", flat=True)) == {
        unpaid.payment.number, never_submitted.number}
    assert payments_reconcile_pending() == 0
    assert wallet_balance(user_id=buyer.pk) == Decimal("66.60")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).count() == 1
