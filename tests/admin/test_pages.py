"""Every back-office page opens for a staff superuser, and the read-only parts really are read-only."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib import admin
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from kameng.accounts.selectors import phone_index_of
from kameng.accounts.services import realname_verify
from kameng.inventory.models import CardKey
from kameng.ledger.models import Account, Entry, Journal
from kameng.orders.services import order_checkout
from kameng.payments.models import (
    NotificationOutcome,
    Payment,
    PaymentChannel,
    PaymentNotification,
    PaymentPurpose,
    RefundDestination,
)
from kameng.payments.refunds import order_refund
from kameng.risk.models import RiskEvent
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db

OUR_APPS = {"accounts", "auth", "catalog", "inventory", "orders", "ledger", "payments", "risk"}


def _populate() -> None:
    buyer = UserFactory.create(phone="13812345678", phone_index=phone_index_of("13812345678"))
    realname_verify(user_id=buyer.pk, name="张小三", id_number="11010519491231002X")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 3)
    fund_wallet(buyer, "20.00")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="admin-pages").order
    order_refund(order_id=order.pk, amount=Decimal("1.00"), destination=RefundDestination.WALLET, reason="测试")
    RiskEvent.objects.create(kind="notify_rejected", message="签名错误", detail={"channel": "epay"})
    channel = PaymentChannel.objects.create(code="epay", name="易支付", kind="epay_v1",
                                            gateway_url="https://pay.example.com/", merchant_id="1001",
                                            merchant_key="k" * 32)
    payment = Payment.objects.create(number="P0001", user=buyer, channel=channel,
                                     purpose=PaymentPurpose.WALLET_TOPUP, amount=Decimal("10.00"))
    PaymentNotification.objects.create(channel=channel, payment=payment, outcome=NotificationOutcome.REJECTED,
                                       reason="签名错误", params={"out_trade_no": "P0001", "sign": "***"})
    from django.contrib.auth.models import Group

    Group.objects.create(name="客服")
    from kameng.accounts.phone_login import phone_code_send

    phone_code_send(phone="13812345678")  # an SMS code row (the console backend only logs it)
    from kameng.payments.models import AmlPolicy
    from kameng.payments.services import payment_credit

    held = Payment.objects.create(number="P0002", user=buyer, channel=channel, purpose=PaymentPurpose.WALLET_TOPUP,
                                  amount=Decimal("6000.00"), client_ip="203.0.113.7")
    payment_credit(channel=channel, out_trade_no=held.number, amount=held.amount, gateway_trade_no="T2")  # AML
    AmlPolicy.objects.create(threshold=Decimal("5000.00"), structuring_ratio=Decimal("0.80"), structuring_count=3,
                             structuring_daily_sum=Decimal("10000.00"), structuring_window_hours=24,
                             retention_days=1095)
    from kameng.risk.blacklist import blacklist_add
    from kameng.risk.models import RiskDecision

    blacklist_add(kind="ip", text="203.0.113.7", reason="测试")
    RiskDecision.objects.create(checkpoint="login", decision="block", reason="测试", ip="203.0.113.7")
    from kameng.accounts.staff_otp import recovery_codes_replace

    recovery_codes_replace(user=buyer)  # a 恢复码 row (the staff authenticator row is the admin's own)


def _registered_models() -> list[type[Model]]:
    return [model for model in admin.site._registry if model._meta.app_label in OUR_APPS]


def test_every_changelist_and_change_page_opens(admin_client: Client) -> None:
    _populate()
    models = _registered_models()
    assert {model._meta.label for model in models} >= {
        "accounts.User", "auth.Group", "catalog.Category", "catalog.Product", "inventory.CardKeyBatch",
        "inventory.CardKey", "orders.Order", "ledger.Account", "ledger.Journal", "ledger.Entry",
        "payments.PaymentChannel", "payments.Payment", "payments.PaymentNotification", "payments.Refund",
        "risk.RiskEvent",
    }
    for model in models:
        opts = model._meta
        changelist = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert changelist.status_code == 200, opts.label
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None, f"no {opts.label} row to open"
        change = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        assert change.status_code == 200, opts.label


def test_add_pages_open_where_adding_is_allowed(admin_client: Client) -> None:
    for name in ("accounts_user", "auth_group", "catalog_category", "catalog_product", "payments_paymentchannel"):
        assert admin_client.get(reverse(f"admin:{name}_add")).status_code == 200, name


def test_ledger_admin_has_no_add_change_or_delete(admin_client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "5.00")
    journal = Journal.objects.get()
    for model in (Account, Journal, Entry):
        model_admin = admin.site._registry[model]
        request = admin_client.get("/").wsgi_request
        request.user = buyer.__class__.objects.get(username="admin")
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
    assert admin_client.get(reverse("admin:ledger_journal_add")).status_code == 403
    assert admin_client.get(reverse("admin:ledger_journal_delete", args=[journal.pk])).status_code == 403
    page = admin_client.get(reverse("admin:ledger_journal_change", args=[journal.pk])).content.decode()
    assert 'name="_save"' not in page
    assert Entry.objects.filter(journal=journal).count() == 2


def test_order_admin_is_read_only_with_timeline(admin_client: Client) -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 1)
    fund_wallet(buyer, "5.00")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order

    page = admin_client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()

    assert order.number in page
    for event in order.events.all():
        assert page.count(event.message) == 1, event.message  # in the 说明 column, not again as the row title
    assert 'name="_save"' not in page
    assert admin_client.get(reverse("admin:orders_order_add")).status_code == 403
    found = admin_client.get(reverse("admin:orders_order_changelist"), {"q": buyer.username})
    assert order.number in found.content.decode()


def test_order_admin_shows_the_delivered_keys_masked_never_whole(admin_client: Client) -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("5.00"))
    secrets = stock_sku(sku, 2)
    fund_wallet(buyer, "10.00")
    result = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=2)

    page = admin_client.get(reverse("admin:orders_order_change", args=[result.order.pk])).content.decode()

    assert "已发卡密（脱敏）" in page
    for secret in result.secrets:
        assert secret not in page
        assert f"<code>{secret[:2]}{'*' * (len(secret) - 4)}{secret[-2:]}</code>" in page
    assert set(result.secrets) <= set(secrets)
    assert f"?q={result.order.number}" in page


def test_user_list_masks_phone_and_finds_by_exact_phone(admin_client: Client) -> None:
    UserFactory.create(username="alice", phone="13812345678", phone_index=phone_index_of("13812345678"))
    UserFactory.create(username="bob", phone="13900001111", phone_index=phone_index_of("13900001111"))

    page = admin_client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert "138****5678" in page
    assert "13812345678" not in page

    found = admin_client.get(reverse("admin:accounts_user_changelist"), {"q": "13812345678"}).content.decode()
    assert "alice" in found
    assert "bob" not in found


def test_product_page_shows_live_stock_per_sku_in_one_query(admin_client: Client, django_assert_max_num_queries
                                                            ) -> None:
    sku = SkuFactory.create(name="10 元")
    other = SkuFactory.create(product=sku.product, name="50 元", price=Decimal("48.00"))
    stock_sku(sku, 4)
    stock_sku(other, 2)
    CardKey.objects.filter(sku=other).update(status="sold")
    url = reverse("admin:catalog_product_change", args=[sku.product.pk])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(url)
    stock_queries = [q for q in queries.captured_queries if "inventory_cardkey" in q["sql"]]
    assert len(stock_queries) == 1
    html = page.content.decode()
    assert reverse("admin:inventory_cardkeybatch_import_sku", args=[sku.pk]) in html
    assert page.context is not None


def test_payment_channel_key_is_write_only(admin_client: Client, settings: Settings) -> None:
    settings.SITE_URL = "https://shop.example.com"
    channel = PaymentChannel.objects.create(code="epay", name="易支付", kind="epay_v1",
                                            gateway_url="https://pay.example.com/", merchant_id="1001",
                                            merchant_key="original-secret-key")
    url = reverse("admin:payments_paymentchannel_change", args=[channel.pk])

    page = admin_client.get(url).content.decode()
    assert "original-secret-key" not in page
    assert "https://shop.example.com/pay/notify/epay/" in page

    form = {"name": "易支付（新）", "code": "epay", "kind": "epay_v1", "is_enabled": "on",
            "gateway_url": "https://pay.example.com/", "merchant_id": "1001", "merchant_key": "",
            "pay_type": "alipay", "min_amount": "0.01", "max_amount": "50000.00", "sort_order": "0"}
    assert admin_client.post(url, form).status_code == 302
    channel.refresh_from_db()
    assert channel.name == "易支付（新）"
    assert channel.merchant_key == "original-secret-key"

    assert admin_client.post(url, {**form, "merchant_key": "replaced-key"}).status_code == 302
    channel.refresh_from_db()
    assert channel.merchant_key == "replaced-key"


def test_deleting_a_buyer_with_orders_is_refused_with_counts_not_a_list(admin_client: Client) -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("1.00"))
    stock_sku(sku, 3)
    fund_wallet(buyer, "3.00")
    for index in range(3):
        order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id=f"delete-{index}")
    url = reverse("admin:accounts_user_delete", args=[buyer.pk])

    page = admin_client.get(url).content.decode()
    admin_client.post(url, {"post": "yes"})
    action = admin_client.post(reverse("admin:accounts_user_changelist"),
                               {"action": "delete_selected", "_selected_action": [buyer.pk]}).content.decode()

    refusal = re.search(r"仍有(.+?)引用所选的用户，不能删除；请改为取消「有效」停用该账号", page)
    assert refusal is not None
    assert sorted(refusal.group(1).split("、")) == ["订单 3 条", "账户 1 条"]
    assert "订单 3 条" in action
    assert 'name="post"' not in page
    assert buyer.__class__.objects.filter(pk=buyer.pk).exists()


def test_a_user_nothing_refers_to_can_still_be_deleted(admin_client: Client) -> None:
    user = UserFactory.create()
    assert admin_client.post(reverse("admin:accounts_user_delete", args=[user.pk]), {"post": "yes"}).status_code == 302
    assert not user.__class__.objects.filter(pk=user.pk).exists()


def test_every_check_constraint_has_a_chinese_message() -> None:
    from django.apps import apps
    from django.db.models import CheckConstraint

    checked = 0
    for model in apps.get_models():
        if not model.__module__.startswith("kameng."):
            continue
        for constraint in model._meta.constraints:
            if isinstance(constraint, CheckConstraint):
                checked += 1
                message = str(constraint.violation_error_message)
                assert message != constraint.default_violation_error_message, constraint.name
                assert any("\u4e00" <= char <= "\u9fff" for char in message), constraint.name
    assert checked >= 24  # the loop reached the models (the number grows with every app)


def test_account_balances_are_shown_as_money(admin_client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "48.80")
    fund_wallet(buyer, "1000", reference="second")

    listing = admin_client.get(reverse("admin:ledger_account_changelist")).content.decode()
    wallet = Account.objects.get(owner=buyer)
    clearing = Account.objects.exclude(pk=wallet.pk).get()
    detail = admin_client.get(reverse("admin:ledger_account_change", args=[clearing.pk])).content.decode()

    assert listing.count("¥1048.80") == 2  # the cached wallet balance and the summed clearing account
    assert "¥1048.80" in detail
    assert "1048.8000" not in listing + detail


def test_logging_in_at_the_admin_login_lands_on_the_admin_index(client: Client) -> None:
    UserFactory.create(username="staffer", is_staff=True)
    login_url = reverse("admin:login")

    page = client.get(login_url).content.decode()
    assert 'name="next" value="/admin/" form="login-form"' in page

    response = client.post(login_url, {"username": "staffer", "password": "correct-horse-9", "next": "/admin/"})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


def test_the_admin_login_keeps_a_given_next(client: Client) -> None:
    target = reverse("admin:orders_order_changelist")
    page = client.get(reverse("admin:login"), {"next": target}).content.decode()
    assert f'name="next" value="{target}" form="login-form"' in page


def test_admin_pages_link_a_favicon_from_our_static_files(admin_client: Client, client: Client) -> None:
    from django.contrib.staticfiles import finders

    link = '<link rel="icon" href="/static/kameng/favicon.svg" type="image/svg+xml"'
    assert link in admin_client.get(reverse("admin:index")).content.decode()
    assert link in client.get(reverse("admin:login")).content.decode()
    found = finders.find("kameng/favicon.svg")
    assert isinstance(found, str)
    with open(found, encoding="utf-8") as svg:
        assert svg.read().startswith("<svg")


def test_order_admin_shows_price_adjustments_as_text_not_escaped_json(admin_client: Client) -> None:
    from kameng.orders.models import Order

    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 1)
    fund_wallet(buyer, "5.00")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order
    Order.objects.filter(pk=order.pk).update(price_lines=[{"code": "member", "label": "会员价", "amount": "-0.36"}])

    page = admin_client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()

    assert "会员价：-0.36" in page
    assert "\\u4f1a" not in page
    plain = Order.objects.filter(pk=order.pk)
    plain.update(price_lines=[])
    assert "价格调整" in admin_client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()


def test_confirmation_and_report_forms_draw_their_inputs_in_the_admin_theme() -> None:
    """Bare Django widgets render borderless in Unfold (the AML reject reason, the tax report's quarter)."""
    from kameng.payments.aml_admin import ApproveForm, RejectForm
    from kameng.suppliers.money_admin import PayForm, TaxReportForm

    rendered = {
        "reason": str(RejectForm()["reason"]), "confirm": str(ApproveForm()["confirm"]),
        "transfer_reference": str(PayForm()["transfer_reference"]), "quarter": str(TaxReportForm()["quarter"]),
        "file_format": str(TaxReportForm()["file_format"]),
    }

    for name, html in rendered.items():
        element = re.search(rf'<(?:input|select|textarea)[^>]*name="{name}"[^>]*>', html)
        assert element is not None, name
        classes = re.search(r'class="([^"]*)"', element.group())
        assert classes is not None, name
        assert "border" in classes.group(1), name
    assert 'maxlength="150"' in rendered["reason"]  # the field's own attributes are kept
    assert '<option value="xlsx"' in rendered["file_format"]
