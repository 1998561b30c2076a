"""The checkpoints wired into the flows: each flow asks the engine at its one named call, a refusal is a clear 403
(JSON in the API, a message on the page, never a 500), and the order flow pays nothing when no rule applies."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from kameng.accounts.models import User
from kameng.orders.models import Order
from kameng.orders.services import order_checkout
from kameng.payments.models import ChannelKind, Payment, PaymentChannel, Refund
from kameng.payments.refunds import order_refund
from kameng.purchases import services as purchase_services
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.risk.blacklist import blacklist_add
from kameng.risk.engine import RiskBlockedError, RiskResult
from kameng.risk.models import (
    Action,
    BlacklistKind,
    Checkpoint,
    Decision,
    Dimension,
    RiskDecision,
    RiskRule,
    RuleKind,
)
from kameng.suppliers.models import SupplierWithdrawal
from kameng.suppliers.withdrawals import supplier_withdrawal_request
from tests.accounts.phone_support import RecordingSender, recording_sender_install
from tests.factories import SkuFactory, SupplierFactory, UserFactory, fund_wallet, stock_sku
from tests.risk.support import rule
from tests.suppliers.money_support import credit_payable

pytestmark = pytest.mark.django_db
PHONE = "13812345678"


def _no_rules() -> None:
    for existing in RiskRule.objects.all():
        existing.is_enabled = False
        existing.save()


# --- order -----------------------------------------------------------------------------------------------------

def _order_queries(buyer: User, sku_id: int, request_id: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        purchase_create(buyer_id=buyer.pk, sku_id=sku_id, quantity=1, payment=PaymentChoice(PayBy.WALLET),
                        request_id=request_id)
    return len(queries)


@pytest.mark.parametrize("minors_rule", [False, True], ids=["no-rule", "minors-rule-on-other-goods"])
def test_the_order_flow_costs_no_extra_query_when_no_rule_applies(monkeypatch: pytest.MonkeyPatch, settings: Any,
                                                                  minors_rule: bool) -> None:
    # The rules' snapshot is not due for a reload between the three orders, however slow the machine.
    settings.KAMENG_RISK_RULES_CHECK_SECONDS = settings.KAMENG_RISK_RULES_MAX_AGE_SECONDS = 3600
    if not minors_rule:
        _no_rules()
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("1.00"))
    stock_sku(sku, 10)
    _order_queries(buyer, sku.pk, "warm")  # the process's caches, the rules' snapshot included

    # The fewest of two orders each way: a one-off reload of some process cache (another test's leftovers under
    # xdist) must not read as the check's cost, while a query the check makes on every order still shows.
    with_check = min(_order_queries(buyer, sku.pk, f"with-check-{n}") for n in (1, 2))
    monkeypatch.setattr(purchase_services, "purchase_risk_check", lambda **kwargs: None)
    without_check = min(_order_queries(buyer, sku.pk, f"without-check-{n}") for n in (1, 2))

    assert with_check == without_check
    assert not RiskDecision.objects.exists()


def test_the_order_checkpoint_alone_costs_no_query(django_assert_num_queries: Any) -> None:
    _no_rules()
    purchase_services.purchase_risk_check(buyer_id=1, sku_id=1, quantity=1, sales_channel="storefront")
    with django_assert_num_queries(0):
        result = purchase_services.purchase_risk_check(buyer_id=1, sku_id=1, quantity=1, sales_channel="storefront",
                                                       client_ip="203.0.113.9", device_id="h:device-0001")
    assert isinstance(result, RiskResult)
    assert result.decision == Decision.ALLOW


def test_a_blocked_order_is_a_clear_403_in_the_json_api_and_no_order_exists() -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 3)
    rule(checkpoint=Checkpoint.ORDER, kind=RuleKind.BLACKLIST, message="您的账号暂时不能下单，如有疑问请联系客服")
    blacklist_add(kind=BlacklistKind.ACCOUNT, text=str(buyer.pk), reason="盗刷")
    client = Client()
    client.force_login(buyer)

    response = client.post("/api/v1/shop/orders", json.dumps({"sku_id": sku.pk, "quantity": 1, "request_id": "a"}),
                           content_type="application/json", HTTP_X_DEVICE_ID="app-install-0001")

    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "risk_blocked"
    assert body["message"] == "您的账号暂时不能下单，如有疑问请联系客服"
    assert not Order.objects.exists()
    stored = RiskDecision.objects.get()
    assert stored.device_hash
    assert stored.user_id == buyer.pk


def test_a_blocked_order_shows_the_message_on_the_product_page() -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 3)
    rule(checkpoint=Checkpoint.ORDER, kind=RuleKind.AMOUNT, amount_threshold="5.00")
    client = Client()
    client.force_login(buyer)

    response = client.post(reverse("web:buy", args=[sku.product_id]),
                           {"sku": sku.pk, "quantity": 1, "request_id": "r1"})

    assert response.status_code == 403
    body = response.content.decode()
    assert "您的操作存在风险，已被系统拦截。如有疑问请联系客服" in body
    assert 'data-code="risk_blocked"' in body
    assert not Order.objects.exists()


def test_an_unverified_buyer_of_game_goods_gets_a_link_to_the_real_name_page() -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("9.50"), product__is_game_goods=True)
    stock_sku(sku, 3)
    client = Client()
    client.force_login(buyer)

    response = client.post(reverse("web:buy", args=[sku.product_id]),
                           {"sku": sku.pk, "quantity": 1, "request_id": "r1"})

    assert response.status_code == 403
    body = response.content.decode()
    assert "购买游戏类商品前请先完成实名认证" in body
    assert 'href="/account/realname/" data-testid="realname-link"' in body


def test_a_review_decision_lets_the_order_through_and_is_queued_for_staff() -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 3)
    rule(checkpoint=Checkpoint.ORDER, kind=RuleKind.AMOUNT, amount_threshold="5.00", action=Action.REVIEW)

    result = purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, payment=PaymentChoice(PayBy.WALLET),
                             request_id="r1")

    assert result.is_paid
    assert RiskDecision.objects.get().decision == Decision.REVIEW


# --- login, register, sms ------------------------------------------------------------------------------------------

def test_a_password_login_that_needs_an_sms_code_switches_to_the_sms_tab() -> None:
    UserFactory.create(username="alice")
    rule(checkpoint=Checkpoint.LOGIN, kind=RuleKind.BLACKLIST, action=Action.REQUIRE_SMS)
    blacklist_add(kind=BlacklistKind.IP, text="127.0.0.1")
    client = Client()

    response = client.post(reverse("web:login"), {"username": "alice", "password": "correct-horse-9"})

    assert response.status_code == 403
    body = response.content.decode()
    assert 'data-testid="sms-required"' in body
    assert "为保障账号安全，请使用短信验证码完成验证" in body
    assert "_auth_user_id" not in client.session


def test_a_blocked_password_login_is_403_before_the_password_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    UserFactory.create(username="alice")
    rule(checkpoint=Checkpoint.LOGIN, dimension=Dimension.IP, limit=2, message="登录尝试过于频繁，请稍后再试")
    client = Client()
    statuses = [client.post(reverse("web:login"), {"username": "alice", "password": "wrong-horse-0"}).status_code
                for _ in range(3)]
    assert statuses == [400, 400, 403]
    refused = client.post(reverse("web:login"), {"username": "alice", "password": "correct-horse-9"})
    assert refused.status_code == 403
    assert "登录尝试过于频繁，请稍后再试" in refused.content.decode()


def test_a_blocked_phone_login_and_registration_answer_403_json(monkeypatch: pytest.MonkeyPatch) -> None:
    sender: RecordingSender = recording_sender_install(monkeypatch)
    client = Client()
    sent = client.post("/api/v1/account/phone/code", json.dumps({"phone": PHONE}), content_type="application/json")
    assert sent.status_code == 200
    rule(checkpoint=Checkpoint.REGISTER, kind=RuleKind.BLACKLIST)
    blacklist_add(kind=BlacklistKind.PHONE, text=PHONE)

    response = client.post("/api/v1/account/phone/login", json.dumps({"phone": PHONE, "code": sender.last_code}),
                           content_type="application/json")

    assert response.status_code == 403
    assert response.json()["code"] == "risk_blocked"
    assert not User.objects.exists()


def test_the_sms_checkpoint_refuses_before_any_code_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    sender: RecordingSender = recording_sender_install(monkeypatch)
    rule(checkpoint=Checkpoint.SMS, kind=RuleKind.BLACKLIST)
    blacklist_add(kind=BlacklistKind.CIDR, text="127.0.0.0/8")

    response = Client().post("/api/v1/account/phone/code", json.dumps({"phone": PHONE}),
                             content_type="application/json")

    assert response.status_code == 403
    assert response.json()["code"] == "risk_blocked"
    assert sender.sent == []


def test_registration_by_password_is_refused_with_a_message_on_the_page() -> None:
    rule(checkpoint=Checkpoint.REGISTER, dimension=Dimension.DEVICE, limit=1, message="该设备注册账号过多")
    client = Client()
    first = client.post(reverse("web:register"), {"login": "alice", "password": "correct-horse-9",
                                                  "password_again": "correct-horse-9"},
                        HTTP_X_DEVICE_ID="app-install-0001")
    client.logout()
    second = client.post(reverse("web:register"), {"login": "bobby", "password": "correct-horse-9",
                                                   "password_again": "correct-horse-9"},
                         HTTP_X_DEVICE_ID="app-install-0001")
    assert first.status_code == 302
    assert second.status_code == 403
    assert "该设备注册账号过多" in second.content.decode()
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]


# --- money: top-up, withdrawal, refund ----------------------------------------------------------------------------

def test_a_blocked_topup_shows_the_message_and_starts_no_payment() -> None:
    PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                  gateway_url="https://pay.example.com/", merchant_id="1001", merchant_key="k" * 32)
    rule(checkpoint=Checkpoint.TOPUP, kind=RuleKind.AMOUNT, amount_threshold="1000.00", message="单笔充值金额过大")
    client = Client()
    client.force_login(UserFactory.create())

    response = client.post(reverse("web:topup"), {"amount": "1000.01", "channel": "epay"})

    assert response.status_code == 403
    assert "单笔充值金额过大" in response.content.decode()
    assert not Payment.objects.exists()


def test_a_blocked_withdrawal_moves_no_money() -> None:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "5000.00")
    rule(checkpoint=Checkpoint.WITHDRAW, kind=RuleKind.AMOUNT, amount_threshold="3000.00")
    with pytest.raises(RiskBlockedError):
        supplier_withdrawal_request(supplier_id=supplier.pk, amount=Decimal("3000.01"), bank_name="工商银行",
                                    account_name="某某公司", account_number="6222020200112233445",
                                    user_id=supplier.owner_id, client_ip="203.0.113.9")
    assert not SupplierWithdrawal.objects.exists()
    assert RiskDecision.objects.get().checkpoint == Checkpoint.WITHDRAW


def test_the_fourth_refund_in_seven_days_is_refused() -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 10)
    orders = [order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id=f"o{n}").order
              for n in range(4)]
    rule(checkpoint=Checkpoint.REFUND, kind=RuleKind.REFUND_FREQUENCY, limit=3, window_seconds=7 * 24 * 3600,
         message="该买家近 7 天退款次数过多，请人工核实后再退款")
    for order in orders[:3]:
        order_refund(order_id=order.pk, amount=Decimal("5.00"), destination="wallet")

    with pytest.raises(RiskBlockedError) as refused:
        order_refund(order_id=orders[3].pk, amount=Decimal("5.00"), destination="wallet")

    assert refused.value.message == "该买家近 7 天退款次数过多，请人工核实后再退款"
    assert Refund.objects.count() == 3


def test_a_blacklisted_person_cannot_order_from_another_account() -> None:
    from kameng.accounts.models import RealName, RealNameStatus
    from kameng.accounts.selectors import identity_index_of
    from tests.accounts.ids import id_number

    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    RealName.objects.create(user=buyer, status=RealNameStatus.VERIFIED, name="张小明", id_number=id_number(),
                            id_number_index=identity_index_of(id_number()), identity_slot=1)
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 3)
    rule(checkpoint=Checkpoint.ORDER, kind=RuleKind.BLACKLIST, dimension=Dimension.ID_FINGERPRINT)
    blacklist_add(kind=BlacklistKind.ID_FINGERPRINT, text=id_number(), reason="盗卡团伙")

    with pytest.raises(RiskBlockedError):
        purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, payment=PaymentChoice(PayBy.WALLET),
                        request_id="r1")
    assert not Order.objects.exists()


def test_a_resellers_bank_withdrawal_goes_through_the_withdraw_checkpoint() -> None:
    from kameng.resellers.commission_withdrawals import commission_withdrawal_request
    from kameng.resellers.models import ResellerWithdrawal

    rule(checkpoint=Checkpoint.WITHDRAW, kind=RuleKind.AMOUNT, amount_threshold="100.00")
    with pytest.raises(RiskBlockedError):
        commission_withdrawal_request(reseller_id=1, amount=Decimal("100.01"), bank_name="工商银行",
                                      account_name="张三", account_number="6222020200112233445",
                                      client_ip="203.0.113.9", device_id="h:device-0001")
    assert not ResellerWithdrawal.objects.exists()
