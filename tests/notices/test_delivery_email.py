"""The delivery e-mail (kameng.notices.listeners): one per delivered order whose buyer has an address, sent after
commit, at most once however often the listener runs, without the card secrets unless the setting says so."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from kameng.notices.listeners import delivered_emails_redrive, orders_delivered_email
from kameng.notices.models import NoticeLanguage, OrderNotice, OrderNoticeStatus
from kameng.orders.aftercare import AftercareEvent
from kameng.orders.fulfilment import order_deliver_manually
from kameng.orders.models import Order
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from tests.factories import SkuFactory, UserFactory, fund_wallet, manual_sku, stock_sku

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]
DELIVERY_EMAIL = override_settings(KAMENG_ORDER_AFTERCARE=["kameng.notices.listeners.orders_delivered_email"],
                                   SITE_URL="https://shop.example.com")


def _buy(capture: Capture, *, email: str = "Buyer@Example.com", quantity: int = 2,
         request_id: str = "mail-1") -> tuple[Order, list[str]]:
    buyer = UserFactory.create(email=email)
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(product__name="腾讯视频月卡")
    secrets = stock_sku(sku, quantity)
    with capture(execute=True):
        order = purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity,
                                payment=PaymentChoice(PayBy.WALLET), request_id=request_id).order
    return order, secrets


@DELIVERY_EMAIL
def test_a_delivered_order_sends_one_email_with_product_quantity_and_link_but_no_keys(
        django_capture_on_commit_callbacks: Capture) -> None:
    order, secrets = _buy(django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["Buyer@Example.com"]
    assert message.subject == f"您的订单 {order.number} 已发货"
    html, mimetype = message.alternatives[0]  # type: ignore[attr-defined]
    assert mimetype == "text/html"
    for body in (message.body, str(html)):
        assert order.title in body
        assert f"https://shop.example.com/orders/{order.number}/" in body
        assert "卡密请在订单页查看" in body
        assert not [secret for secret in secrets if secret in body]
    assert "数量: 2" in message.body
    notice = OrderNotice.objects.get()
    assert (notice.order_id, notice.kind, notice.status) == (order.pk, "delivered", OrderNoticeStatus.SENT)
    assert notice.sent_at is not None


@DELIVERY_EMAIL
@override_settings(KAMENG_EMAIL_INCLUDE_KEYS=True)
def test_the_keys_are_in_the_email_only_when_the_setting_is_on(django_capture_on_commit_callbacks: Capture) -> None:
    _order, secrets = _buy(django_capture_on_commit_callbacks)

    message = mail.outbox[0]
    assert [secret for secret in secrets if secret in message.body] == secrets
    assert "卡密请在订单页查看" not in message.body


@DELIVERY_EMAIL
def test_running_the_listener_again_sends_nothing_more(django_capture_on_commit_callbacks: Capture) -> None:
    order, _ = _buy(django_capture_on_commit_callbacks)

    orders_delivered_email(order_ids=[order.pk], event=AftercareEvent.DELIVERED)
    orders_delivered_email(order_ids=[order.pk], event=AftercareEvent.DELIVERED)

    assert len(mail.outbox) == 1
    assert OrderNotice.objects.count() == 1


@DELIVERY_EMAIL
def test_no_email_without_an_address(django_capture_on_commit_callbacks: Capture) -> None:
    order, _ = _buy(django_capture_on_commit_callbacks, email="")

    orders_delivered_email(order_ids=[order.pk], event=AftercareEvent.DELIVERED)

    assert mail.outbox == []
    assert OrderNotice.objects.count() == 0


@DELIVERY_EMAIL
def test_no_email_when_the_delivery_rolled_back(django_capture_on_commit_callbacks: Capture) -> None:
    buyer = UserFactory.create(email="buyer@example.com")
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create()
    stock_sku(sku, 1)

    def purchase_then_fail() -> None:
        with transaction.atomic():
            purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, payment=PaymentChoice(PayBy.WALLET),
                            request_id="rolled-back")
            raise RuntimeError("something after the purchase failed")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        purchase_then_fail()

    assert Order.objects.count() == 0
    assert mail.outbox == []
    assert OrderNotice.objects.count() == 0


@DELIVERY_EMAIL
def test_a_refund_or_an_undelivered_order_sends_nothing(django_capture_on_commit_callbacks: Capture) -> None:
    buyer = UserFactory.create(email="buyer@example.com")
    fund_wallet(buyer, "100.00")
    with django_capture_on_commit_callbacks(execute=True):
        order = purchase_create(buyer_id=buyer.pk, sku_id=manual_sku("58.00").pk, quantity=1,
                                payment=PaymentChoice(PayBy.WALLET), request_id="manual-waiting").order

    orders_delivered_email(order_ids=[order.pk], event=AftercareEvent.DELIVERED)  # paid, not delivered yet
    orders_delivered_email(order_ids=[order.pk], event=AftercareEvent.REFUNDED)

    assert mail.outbox == []


@DELIVERY_EMAIL
def test_a_manual_delivery_is_mailed_without_its_note(django_capture_on_commit_callbacks: Capture) -> None:
    buyer = UserFactory.create(email="buyer@example.com")
    fund_wallet(buyer, "100.00")
    with django_capture_on_commit_callbacks(execute=True):
        order = purchase_create(buyer_id=buyer.pk, sku_id=manual_sku("58.00").pk, quantity=1,
                                payment=PaymentChoice(PayBy.WALLET), request_id="manual-1").order
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        order_deliver_manually(order_id=order.pk, note="游戏账号 A-778 密码 hunter2 已充值")

    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert "发货说明请在订单页查看" in body
    assert "hunter2" not in body
    assert "A-778" not in body


@DELIVERY_EMAIL
def test_a_buyer_who_reads_english_gets_the_email_in_english(django_capture_on_commit_callbacks: Capture) -> None:
    buyer = UserFactory.create(email="buyer@example.com")
    NoticeLanguage.objects.create(user=buyer, language="en")
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create()
    stock_sku(sku, 1)

    with django_capture_on_commit_callbacks(execute=True):
        order = purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, payment=PaymentChoice(PayBy.WALLET),
                                request_id="english").order

    message = mail.outbox[0]
    assert message.subject == f"Your order {order.number} has been delivered"
    assert "Your card keys are on the order page." in message.body
    assert "您" not in message.body


class _RefusingBackend:
    """An e-mail backend whose server refuses every message."""

    def __init__(self, **_kwargs: object) -> None: ...

    def send_messages(self, _messages: object) -> int:
        raise OSError("connection refused")


@DELIVERY_EMAIL
def test_a_send_that_fails_is_retried_and_then_sent_once(django_capture_on_commit_callbacks: Capture) -> None:
    order, _ = _buy(django_capture_on_commit_callbacks, request_id="retry")
    OrderNotice.objects.all().delete()
    mail.outbox.clear()

    with override_settings(EMAIL_BACKEND="tests.notices.test_delivery_email._RefusingBackend"), \
            pytest.raises(OSError, match="connection refused"):
        orders_delivered_email(order_ids=[order.pk], event=AftercareEvent.DELIVERED)
    assert OrderNotice.objects.count() == 0  # the claim was given back for the retry

    orders_delivered_email(order_ids=[order.pk], event=AftercareEvent.DELIVERED)

    assert len(mail.outbox) == 1
    assert OrderNotice.objects.get().status == OrderNoticeStatus.SENT


@DELIVERY_EMAIL
def test_orders_delivered_together_get_one_email_each(django_capture_on_commit_callbacks: Capture) -> None:
    first, _ = _buy(django_capture_on_commit_callbacks, email="a@example.com", quantity=1, request_id="one")
    second, _ = _buy(django_capture_on_commit_callbacks, email="", quantity=1, request_id="two")
    third, _ = _buy(django_capture_on_commit_callbacks, email="c@example.com", quantity=1, request_id="three")
    mail.outbox.clear()
    OrderNotice.objects.all().delete()

    orders_delivered_email(order_ids=[first.pk, second.pk, third.pk], event=AftercareEvent.DELIVERED)

    assert sorted(message.to[0] for message in mail.outbox) == ["a@example.com", "c@example.com"]
    assert set(OrderNotice.objects.values_list("order_id", flat=True)) == {first.pk, third.pk}


@DELIVERY_EMAIL
def test_the_sweep_sends_what_a_lost_task_did_not_and_only_once(django_capture_on_commit_callbacks: Capture) -> None:
    with override_settings(KAMENG_ORDER_AFTERCARE=[]):  # as if the broker had lost the aftercare task
        lost, _ = _buy(django_capture_on_commit_callbacks, email="lost@example.com", quantity=1, request_id="lost")
        _buy(django_capture_on_commit_callbacks, email="fresh@example.com", quantity=1, request_id="fresh")
        old, _ = _buy(django_capture_on_commit_callbacks, email="old@example.com", quantity=1, request_id="old")
    sent, _ = _buy(django_capture_on_commit_callbacks, email="sent@example.com", quantity=1, request_id="sent")
    now = timezone.now()
    Order.objects.filter(pk__in=[lost.pk, sent.pk]).update(delivered_at=now - timedelta(minutes=30))
    Order.objects.filter(pk=old.pk).update(delivered_at=now - timedelta(days=2))
    mail.outbox.clear()

    first = delivered_emails_redrive()
    second = delivered_emails_redrive()

    assert (first, second) == (1, 0)  # `fresh` is minutes old: its own task may still be on its way
    assert [message.to for message in mail.outbox] == [["lost@example.com"]]
    assert set(OrderNotice.objects.values_list("order_id", flat=True)) == {lost.pk, sent.pk}
