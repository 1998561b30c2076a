from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from kameng.accounts.models import User
from kameng.ledger.selectors import wallet_balance
from kameng.payments.gateways.epay import epay_sign
from kameng.payments.models import (
    ChannelKind,
    NotificationOutcome,
    Payment,
    PaymentChannel,
    PaymentNotification,
    PaymentStatus,
)
from kameng.payments.services import wallet_topup_start
from kameng.risk.models import RiskEvent
from tests.factories import UserFactory, fund_wallet
from tests.payments.support import epay_query_says_paid

pytestmark = pytest.mark.django_db

PID = "1001"
KEY = "web-test-merchant-key-0123456789"


def _channel(code: str = "epay") -> PaymentChannel:
    return PaymentChannel.objects.create(code=code, name="易支付", kind=ChannelKind.EPAY_V1,
                                         gateway_url="https://pay.example.com/", merchant_id=PID, merchant_key=KEY)


def _logged_in(client: Client) -> User:
    user = UserFactory.create()
    client.force_login(user)
    return user


def _started_payment(user: User, channel: PaymentChannel, amount: str = "30.00") -> Payment:
    return wallet_topup_start(user_id=user.pk, channel_code=channel.code, amount_text=amount,
                              return_url="http://testserver/").payment


def _notify_params(payment: Payment, *, money: str | None = None, key: str = KEY) -> dict[str, str]:
    params = {"pid": PID, "trade_no": "2026112600001", "out_trade_no": payment.number, "type": "alipay",
              "name": "钱包充值", "money": money or f"{payment.amount:.2f}", "trade_status": "TRADE_SUCCESS"}
    return {**params, "sign": epay_sign(params, key), "sign_type": "MD5"}


def test_wallet_page_shows_balance_statement_and_enabled_channels(client: Client) -> None:
    user = _logged_in(client)
    fund_wallet(user, "12.34", reference="gift-1")
    _channel()
    PaymentChannel.objects.create(code="off", name="停用通道", kind=ChannelKind.EPAY_V1, is_enabled=False,
                                  gateway_url="https://x.example.com/", merchant_id="2", merchant_key="k")

    body = client.get(reverse("web:wallet")).content.decode()

    assert '<p class="balance" data-testid="wallet-balance">¥12.34</p>' in body
    assert "+12.34" in body
    assert 'value="epay"' in body
    assert "停用通道" not in body


def test_top_up_redirects_to_the_gateway_with_our_notify_and_return_urls(client: Client) -> None:
    user = _logged_in(client)
    _channel()

    response = client.post(reverse("web:topup"), {"amount": "50", "channel": "epay"})

    payment = Payment.objects.get()
    assert payment.user_id == user.pk
    assert payment.amount == Decimal("50.00")
    assert payment.status == PaymentStatus.PENDING
    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://pay.example.com/submit.php"
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert query["out_trade_no"] == payment.number
    assert query["money"] == "50.00"
    assert query["notify_url"] == settings.SITE_URL + "/pay/notify/epay/"
    assert query["return_url"] == settings.SITE_URL + "/pay/return/"
    assert query["sign"] == epay_sign(query, KEY)


def test_top_up_with_a_bad_amount_is_400_and_keeps_the_form(client: Client) -> None:
    _logged_in(client)
    _channel()

    response = client.post(reverse("web:topup"), {"amount": "1.234", "channel": "epay"})

    assert response.status_code == 400
    body = response.content.decode()
    assert "金额最多两位小数" in body
    assert 'value="1.234"' in body
    assert not Payment.objects.exists()


@pytest.mark.parametrize("amount", ["1e30", "9" * 12, "9" * 40])
def test_top_up_with_a_huge_amount_is_400_not_a_500(client: Client, amount: str) -> None:
    _logged_in(client)
    _channel()

    response = client.post(reverse("web:topup"), {"amount": amount, "channel": "epay"})

    assert response.status_code == 400
    assert not Payment.objects.exists()


def test_top_up_service_refuses_a_huge_amount_as_an_application_error() -> None:
    from kameng.core.errors import ApplicationError

    with pytest.raises(ApplicationError) as error:
        wallet_topup_start(user_id=UserFactory.create().pk, channel_code=_channel().code, amount_text="9" * 40,
                           return_url="https://shop.example.com/r")

    assert (error.value.code, error.value.message) == ("invalid_amount", "金额不能超过 ¥50,000.00")
    assert not Payment.objects.exists()


def test_signed_notify_answers_success_and_credits_once_when_sent_twice(client: Client) -> None:
    user = UserFactory.create()
    payment = _started_payment(user, _channel())
    params = _notify_params(payment)

    first = client.get(reverse("payments:notify", args=["epay"]), params)
    second = client.post(reverse("payments:notify", args=["epay"]), params)

    assert (first.status_code, first.content) == (200, b"success")
    assert (second.status_code, second.content) == (200, b"success")
    assert first["Content-Type"].startswith("text/plain")
    assert wallet_balance(user_id=user.pk) == Decimal("30.00")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert list(payment.notifications.order_by("id").values_list("outcome", flat=True)) == [
        NotificationOutcome.CREDITED, NotificationOutcome.DUPLICATE]


def test_notify_with_a_bad_signature_answers_fail_and_credits_nothing(client: Client) -> None:
    user = UserFactory.create()
    payment = _started_payment(user, _channel())
    params = _notify_params(payment, key="not-the-merchant-key")

    response = client.get(reverse("payments:notify", args=["epay"]), params)

    assert (response.status_code, response.content) == (400, b"fail")
    assert wallet_balance(user_id=user.pk) == Decimal("0.00")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING


def test_notify_with_a_tampered_amount_credits_nothing(client: Client) -> None:
    user = UserFactory.create()
    payment = _started_payment(user, _channel())
    params = _notify_params(payment)
    params["money"] = "3000.00"

    response = client.get(reverse("payments:notify", args=["epay"]), params)

    assert (response.status_code, response.content) == (400, b"fail")
    assert wallet_balance(user_id=user.pk) == Decimal("0.00")


def test_topup_status_polls_while_pending_then_shows_the_new_balance(client: Client) -> None:
    user = _logged_in(client)
    payment = _started_payment(user, _channel(), amount="25.00")
    status_url = reverse("web:topup_status", args=[payment.number])

    pending = client.get(status_url).content.decode()
    assert f'hx-get="{status_url}"' in pending
    assert 'data-status="pending"' in pending

    client.get(reverse("payments:notify", args=["epay"]), _notify_params(payment))
    fragment = client.get(status_url, headers={"HX-Request": "true"})

    body = fragment.content.decode()
    assert "<html" not in body
    assert 'data-status="succeeded"' in body
    assert "hx-get" not in body
    assert '<b class="balance" data-testid="topup-new-balance">¥25.00</b>' in body
    page = client.get(status_url).content.decode()
    assert page.count("返回钱包") == 1  # the page's own link; the result offers 继续购物 beside it
    assert "继续购物" in page


def test_topup_status_of_another_user_is_404(client: Client) -> None:
    payment = _started_payment(UserFactory.create(), _channel())
    _logged_in(client)

    response = client.get(reverse("web:topup_status", args=[payment.number]))

    assert response.status_code == 404


def test_return_from_the_gateway_is_confirmed_with_the_gateway_and_shows_the_status(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    user = _logged_in(client)
    payment = _started_payment(user, _channel(), amount="15.00")
    asked = epay_query_says_paid(monkeypatch)

    legacy = client.get(reverse("web:topup_return"), _notify_params(payment))  # the address of older top-ups
    response = client.get(legacy["Location"])

    assert response["Location"] == reverse("web:topup_status", args=[payment.number])
    assert wallet_balance(user_id=user.pk) == Decimal("15.00")
    again = client.get(reverse("payments:return"), _notify_params(payment))
    assert again.status_code == 302
    assert wallet_balance(user_id=user.pk) == Decimal("15.00")
    assert asked == [payment.number]
    assert not PaymentNotification.objects.exists()  # a return is not a notification


def test_return_with_a_forged_query_credits_nothing(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    user = _logged_in(client)
    payment = _started_payment(user, _channel(), amount="15.00")

    asked = epay_query_says_paid(monkeypatch)

    client.get(reverse("payments:return"), _notify_params(payment, key="forged"))

    assert wallet_balance(user_id=user.pk) == Decimal("0.00")
    assert asked == []  # not signed by the gateway: not even worth a question
    assert not PaymentNotification.objects.exists()
    assert not RiskEvent.objects.exists()


def test_wallet_top_up_form_is_prefilled_from_the_order_shortfall_link(client: Client) -> None:
    _logged_in(client)
    _channel()

    body = client.get(reverse("web:wallet"), {"amount": "16.00"}).content.decode()

    assert 'name="amount" value="16.00"' in body


def test_a_topup_started_from_an_order_leads_back_to_it(client: Client) -> None:
    from kameng.orders.services import order_checkout
    from tests.factories import SkuFactory, stock_sku

    user = _logged_in(client)
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=user.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    _channel()

    form_page = client.get(reverse("web:wallet"), {"amount": "8.00", "order": order.number}).content.decode()
    assert f'name="for_order" value="{order.number}"' in form_page
    client.post(reverse("web:topup"), {"channel": "epay", "amount": "8.00", "for_order": order.number})
    payment = Payment.objects.get()
    client.get(reverse("payments:notify", args=["epay"]), _notify_params(payment))

    done = client.get(reverse("web:topup_status", args=[payment.number])).content.decode()

    assert f'href="{reverse("web:order_detail", args=[order.number])}" data-testid="back-to-order"' in done


def test_a_topup_naming_someone_elses_order_just_goes_back_to_the_wallet(client: Client) -> None:
    from kameng.orders.services import order_checkout
    from tests.factories import SkuFactory, stock_sku

    other = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=other.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    _logged_in(client)
    _channel()

    client.post(reverse("web:topup"), {"channel": "epay", "amount": "8.00", "for_order": order.number})
    payment = Payment.objects.get()
    client.get(reverse("payments:notify", args=["epay"]), _notify_params(payment))
    done = client.get(reverse("web:topup_status", args=[payment.number])).content.decode()

    assert order.number not in done
    assert f'href="{reverse("web:wallet")}"' in done


def test_topup_status_stops_polling_after_half_an_hour_and_says_what_to_do(client: Client) -> None:
    from datetime import timedelta

    from django.utils import timezone

    user = _logged_in(client)
    payment = _started_payment(user, _channel(), amount="25.00")
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=31))

    body = client.get(reverse("web:topup_status", args=[payment.number])).content.decode()

    assert "hx-get" not in body
    assert 'data-testid="topup-no-result"' in body
    assert f'href="{reverse("web:wallet")}?amount=25.00"' in body

    client.get(reverse("payments:notify", args=["epay"]), _notify_params(payment))  # it arrives after all
    assert 'data-status="succeeded"' in client.get(reverse("web:topup_status", args=[payment.number])).content.decode()
