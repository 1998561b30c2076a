"""What the buyer sees of a payment closed because it could no longer pay anything, and the gateway's return to a
closed payment that was paid after all (credited once)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kameng.accounts.models import User
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_cancel, order_checkout, orders_expire_due
from kameng.payments.gateways.epay import epay_sign
from kameng.payments.models import ChannelKind, Payment, PaymentChannel, PaymentCloseReason, PaymentStatus
from kameng.payments.reconciliation import payment_close
from kameng.payments.services import order_payment_start, wallet_topup_start
from tests.factories import SkuFactory, UserFactory, stock_sku
from tests.payments.support import epay_query_says_paid

pytestmark = pytest.mark.django_db

PID = "1001"
KEY = "closed-web-merchant-key-01234567"


def _channel() -> PaymentChannel:
    return PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                         gateway_url="https://pay.example.com/", merchant_id=PID, merchant_key=KEY)


def _logged_in(client: Client) -> User:
    user = UserFactory.create()
    client.force_login(user)
    return user


def _signed(payment: Payment) -> dict[str, str]:
    params = {"pid": PID, "trade_no": "2026112600055", "out_trade_no": payment.number, "type": "alipay",
              "name": "x", "money": f"{payment.amount:.2f}", "trade_status": "TRADE_SUCCESS"}
    return {**params, "sign": epay_sign(params, KEY), "sign_type": "MD5"}


def _closed_topup(user: User, amount: str = "25.00") -> Payment:
    payment = wallet_topup_start(user_id=user.pk, channel_code=_channel().code, amount_text=amount,
                                 return_url="http://testserver/").payment
    assert payment_close(payment_id=payment.pk, reason=PaymentCloseReason.TOPUP_UNPAID, detail="最终查询：未支付")
    return payment


def _closed_order_payment(user: User, *, expire: bool = True) -> tuple[Order, Payment]:
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 2)
    order = order_checkout(buyer_id=user.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    started = order_payment_start(order_id=order.pk, buyer_id=user.pk, channel_code=_channel().code,
                                  return_url="http://testserver/")
    assert started.payment is not None
    if expire:
        Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
        assert orders_expire_due() == 1
        reason = PaymentCloseReason.ORDER_EXPIRED
    else:
        order_cancel(order_id=order.pk, buyer_id=user.pk)
        reason = PaymentCloseReason.ORDER_CANCELLED
    assert payment_close(payment_id=started.payment.pk, reason=reason)
    order.refresh_from_db()
    return order, started.payment


def test_the_top_up_status_page_says_it_was_closed_and_why(client: Client) -> None:
    payment = _closed_topup(_logged_in(client))

    body = client.get(reverse("web:topup_status", args=[payment.number])).content.decode()

    assert 'data-status="closed"' in body
    assert "hx-get" not in body  # nothing to wait for
    assert '<span class="badge status-closed">已关闭</span>' in body
    assert "这笔充值已关闭（长时间未收到付款），不能再付款" in body
    assert f'href="{reverse("web:wallet")}?amount=25.00"' in body
    assert 'data-testid="topup-no-result"' not in body


def test_the_top_up_status_page_says_it_in_english_too(client: Client) -> None:
    payment = _closed_topup(_logged_in(client))
    client.post(reverse("set_language"), {"language": "en", "next": "/"})

    body = client.get(reverse("web:topup_status", args=[payment.number])).content.decode()

    assert ">Closed</span>" in body
    assert "This top-up has been closed (No payment received for a long time)" in body


def test_the_order_payment_page_says_the_payment_was_closed_and_why(client: Client) -> None:
    order, payment = _closed_order_payment(_logged_in(client))

    body = client.get(reverse("web:order_payment", args=[order.number, payment.number])).content.decode()

    assert 'data-payment-status="closed"' in body
    assert "hx-get" not in body
    assert "此支付单已关闭（订单已超时关闭），不能再付款" in body
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    english = client.get(reverse("web:order_payment", args=[order.number, payment.number])).content.decode()
    assert "This payment has been closed (Order expired)" in english


def test_the_order_page_lists_its_closed_payments(client: Client) -> None:
    order, payment = _closed_order_payment(_logged_in(client), expire=False)

    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()

    assert f"易支付支付单 {payment.number} 已关闭（订单已取消），不能再付款" in body
    assert 'data-testid="continue-qr"' not in body


def test_a_pending_payment_still_shows_as_waiting(client: Client) -> None:
    user = _logged_in(client)
    payment = wallet_topup_start(user_id=user.pk, channel_code=_channel().code, amount_text="5.00",
                                 return_url="http://testserver/").payment

    body = client.get(reverse("web:topup_status", args=[payment.number])).content.decode()

    assert 'data-status="pending"' in body
    assert "已关闭" not in body


def test_the_return_from_the_gateway_credits_a_closed_top_up_paid_after_all_once(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    user = _logged_in(client)
    payment = _closed_topup(user, amount="25.00")
    asked = epay_query_says_paid(monkeypatch)

    first = client.get(reverse("payments:return"), _signed(payment))
    again = client.get(reverse("payments:return"), _signed(payment))

    assert first["Location"] == again["Location"] == reverse("web:topup_status", args=[payment.number])
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert wallet_balance(user_id=user.pk) == Decimal("25.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    assert asked == [payment.number]  # confirmed with the gateway once; the second return found it credited
    assert 'data-status="succeeded"' in client.get(first["Location"]).content.decode()
    assert ledger_problems() == []


def test_the_return_to_an_order_page_credits_its_closed_payment_into_the_wallet_once(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    user = _logged_in(client)
    order, payment = _closed_order_payment(user)
    epay_query_says_paid(monkeypatch)

    for _ in range(3):
        response = client.get(reverse("payments:return"), _signed(payment))
        assert response["Location"] == reverse("web:order_detail", args=[order.number])

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert wallet_balance(user_id=user.pk) == Decimal("8.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.EXPIRED
    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    assert 'data-testid="paid-into-wallet"' in body
    assert "已关闭（订单已超时关闭）" not in body  # no longer closed: it paid, into the wallet


def test_a_payment_that_failed_at_its_gateway_says_so_and_the_order_can_be_paid_again(client: Client) -> None:
    user = _logged_in(client)
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 2)
    order = order_checkout(buyer_id=user.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    started = order_payment_start(order_id=order.pk, buyer_id=user.pk, channel_code=_channel().code,
                                  return_url="http://testserver/")
    assert started.payment is not None
    assert payment_close(payment_id=started.payment.pk, reason=PaymentCloseReason.PAYMENT_FAILED)

    detail = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    paying = client.get(reverse("web:order_payment", args=[order.number, started.payment.number])).content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    english = client.get(reverse("web:order_detail", args=[order.number])).content.decode()

    assert f"易支付支付单 {started.payment.number} 支付失败，没有扣款。您可以重新选择支付方式付款。" in detail
    assert "正在确认支付" not in detail
    assert 'data-testid="payment-closed"' not in detail
    assert 'data-testid="payment-failed"' in paying
    assert "正在等待支付结果" not in paying
    assert f"易支付 payment {started.payment.number} failed and nothing was charged." in english
    again = order_payment_start(order_id=order.pk, buyer_id=user.pk, channel_code="epay",
                                return_url="http://testserver/")  # no PaymentInFlightError
    assert again.payment is not None
    assert again.payment.pk != started.payment.pk


def test_a_failed_top_up_says_payment_failed(client: Client) -> None:
    user = _logged_in(client)
    payment = wallet_topup_start(user_id=user.pk, channel_code=_channel().code, amount_text="25.00",
                                 return_url="http://testserver/").payment
    assert payment_close(payment_id=payment.pk, reason=PaymentCloseReason.PAYMENT_FAILED)

    body = client.get(reverse("web:topup_status", args=[payment.number])).content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    english = client.get(reverse("web:topup_status", args=[payment.number])).content.decode()

    assert '<span class="badge status-closed">支付失败</span>' in body
    assert 'data-testid="topup-failed"' in body
    assert "待支付" not in body
    assert "正在等待支付结果" not in body
    assert "hx-get" not in body
    assert '<span class="badge status-closed">Payment failed</span>' in english
    assert "Payment failed: nothing was charged for this top-up" in english
