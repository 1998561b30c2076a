"""Batch purchase (批量采购): up to KAMENG_BATCH_PURCHASE_MAX units of one SKU paid from the wallet at the reseller's
price, keys downloaded as TXT or CSV; exact amounts, the product's max_quantity not applied, PIN rules, sold out,
insufficient balance, a manual product completing later; 1,000 keys on PostgreSQL."""

from __future__ import annotations

import csv
import io
import time
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from kameng.accounts.paypin import payment_pin_set
from kameng.catalog.models import Sku
from kameng.catalog.pricing import SALES_CHANNEL_BATCH, SALES_CHANNEL_STOREFRONT
from kameng.core.errors import ApplicationError
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.selectors import wallet_balance
from kameng.orders.group_commit import writer_stop
from kameng.orders.models import Order, OrderStatus
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.resellers.models import Reseller
from tests.factories import SkuFactory, fund_wallet, manual_sku, stock_sku
from tests.resellers.support import reseller_make, tier_make

RULES = ["kameng.membership.pricing.member_price_rule", "kameng.resellers.pricing.reseller_price_rule"]


@pytest.fixture(autouse=True)
def _rules(settings: Any) -> None:
    settings.KAMENG_PRICE_RULES = RULES


def _setup(keys: int, funds: str = "10000.00") -> tuple[Reseller, Sku, list[str]]:
    reseller = reseller_make(tier_make(discount="20.00"))
    sku = SkuFactory.create(price=Decimal("10.00"))  # the product's max_quantity is 100 (factory)
    secrets = stock_sku(sku, keys, prefix=f"BATCH-{sku.pk}") if keys else []
    fund_wallet(reseller.user, funds, reference=f"batch-{reseller.pk}")
    return reseller, sku, secrets


def _post(client: Client, sku: Sku, quantity: int, request_id: str = "", **extra: str) -> Any:
    return client.post(reverse("web:reseller_batch"),
                       {"sku": str(sku.pk), "quantity": str(quantity), "request_id": request_id, **extra})


def _download(client: Client, order: Order, file_format: str) -> str:
    response = client.get(reverse("web:reseller_batch_keys", args=[order.number, file_format]))
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("no-store") or "no-store" in response["Cache-Control"]
    assert response["Content-Disposition"] == f'attachment; filename="{order.number}.{file_format}"'
    return b"".join(response.streaming_content).decode("utf-8")  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_a_thousand_keys_in_one_order_at_the_tier_price(client: Client) -> None:
    reseller, sku, secrets = _setup(1000)
    client.force_login(reseller.user)
    page = client.get(reverse("web:reseller_batch"), {"sku": sku.pk}).content.decode()
    assert 'data-testid="batch-unit-price">¥8.00<' in page

    response = _post(client, sku, 1000, request_id="batch-1")

    order = Order.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("web:reseller_batch_order", args=[order.number])
    assert (order.quantity, order.unit_price, order.total_amount) == (1000, Decimal("8.00"), Decimal("8000.00"))
    assert (order.status, order.sales_channel) == (OrderStatus.DELIVERED, SALES_CHANNEL_BATCH)
    assert order.price_lines == [{"code": "reseller_tier", "label": "高级代理价", "amount": "-2.00"}]
    assert wallet_balance(user_id=reseller.user_id) == Decimal("2000.00")
    assert CardKey.objects.filter(order=order, status=CardKeyStatus.SOLD).count() == 1000
    txt = _download(client, order, "txt")
    assert sorted(txt.splitlines()) == secrets  # every key delivered, once, exactly as imported
    rows = list(csv.reader(io.StringIO(_download(client, order, "csv").lstrip("\ufeff"))))
    assert rows[0] == ["订单号", "序号", "商品", "卡密"]
    assert len(rows) == 1001
    assert rows[1] == [order.number, "1", order.title, txt.splitlines()[0]]
    assert [row[3] for row in rows[1:]] == txt.splitlines()
    assert 'data-testid="batch-download-csv"' in client.get(response["Location"]).content.decode()


@pytest.mark.django_db
def test_the_same_form_sent_twice_is_one_order(client: Client) -> None:
    reseller, sku, _ = _setup(10)
    client.force_login(reseller.user)
    _post(client, sku, 4, request_id="same-form")
    _post(client, sku, 4, request_id="same-form")
    assert Order.objects.count() == 1
    assert wallet_balance(user_id=reseller.user_id) == Decimal("9968.00")


@pytest.mark.django_db
def test_above_the_batch_maximum_is_refused(client: Client, settings: Any) -> None:
    settings.KAMENG_BATCH_PURCHASE_MAX = 20
    reseller, sku, _ = _setup(30)
    client.force_login(reseller.user)
    response = _post(client, sku, 21)
    assert response.status_code == 400
    assert not Order.objects.exists()
    assert wallet_balance(user_id=reseller.user_id) == Decimal("10000.00")
    with pytest.raises(ApplicationError, match="1–20"):
        purchase_create(buyer_id=reseller.user_id, sku_id=sku.pk, quantity=21, payment=PaymentChoice(PayBy.WALLET),
                        request_id=None, sales_channel=SALES_CHANNEL_BATCH)


@pytest.mark.django_db
def test_the_storefront_keeps_the_products_own_limit() -> None:
    reseller, sku, _ = _setup(150)
    with pytest.raises(ApplicationError, match="1–100") as raised:
        purchase_create(buyer_id=reseller.user_id, sku_id=sku.pk, quantity=101, payment=PaymentChoice(PayBy.WALLET),
                        request_id=None, sales_channel=SALES_CHANNEL_STOREFRONT)
    assert raised.value.code == "invalid_quantity"
    result = purchase_create(buyer_id=reseller.user_id, sku_id=sku.pk, quantity=101,
                             payment=PaymentChoice(PayBy.WALLET), request_id=None, sales_channel=SALES_CHANNEL_BATCH)
    assert result.order.total_amount == Decimal("808.00")


@pytest.mark.django_db
def test_insufficient_balance_and_sold_out_change_nothing(client: Client) -> None:
    reseller, sku, _ = _setup(5, funds="30.00")
    client.force_login(reseller.user)
    short = _post(client, sku, 4)  # 32.00 > 30.00
    assert short.status_code == 409
    assert 'data-code="insufficient_balance"' in short.content.decode()
    fund_wallet(reseller.user, "100.00", reference="batch-more")
    sold_out = _post(client, sku, 6)
    assert sold_out.status_code == 409
    assert 'data-code="sold_out"' in sold_out.content.decode()
    assert not Order.objects.exists()
    assert wallet_balance(user_id=reseller.user_id) == Decimal("130.00")
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 5


@pytest.mark.django_db
def test_a_wallet_payment_over_the_password_free_limit_asks_for_the_pin(client: Client) -> None:
    reseller, sku, _ = _setup(10)
    payment_pin_set(user_id=reseller.user_id, new_pin="802413", password="correct-horse-9")
    client.force_login(reseller.user)
    assert 'data-testid="pin-field"' in client.get(reverse("web:reseller_batch")).content.decode()
    refused = _post(client, sku, 5)
    assert refused.status_code in (400, 403)
    assert 'data-code="pin_required"' in refused.content.decode()
    assert not Order.objects.exists()
    paid = _post(client, sku, 5, pin="802413")
    assert paid.status_code == 302
    assert Order.objects.get().total_amount == Decimal("40.00")


@pytest.mark.django_db
def test_a_manual_product_completes_later_and_has_no_file_yet(client: Client) -> None:
    reseller, _, _ = _setup(0)
    sku = manual_sku("58.00")
    client.force_login(reseller.user)
    response = _post(client, sku, 2)
    order = Order.objects.get()
    assert response.status_code == 302
    assert order.total_amount == Decimal("92.80")  # 58.00 × 0.8 × 2
    assert order.status in (OrderStatus.PAID, OrderStatus.UNDER_REVIEW, OrderStatus.FULFILLING)
    page = client.get(response["Location"]).content.decode()
    assert "batch-download-txt" not in page
    not_yet = client.get(reverse("web:reseller_batch_keys", args=[order.number, "txt"]))
    assert not_yet.status_code == 409
    assert 'data-code="not_delivered"' in not_yet.content.decode()


@pytest.mark.django_db
def test_an_unknown_file_format_is_not_found(client: Client) -> None:
    reseller, sku, _ = _setup(2)
    client.force_login(reseller.user)
    _post(client, sku, 2)
    order = Order.objects.get()
    assert client.get(reverse("web:reseller_batch_keys", args=[order.number, "xlsx"])).status_code == 404


@pytest.mark.django_db
def test_a_csv_cell_that_reads_as_a_formula_is_quoted(client: Client) -> None:
    reseller, sku, _ = _setup(0)
    stock_sku(sku, 1, prefix="=HYPERLINK")
    client.force_login(reseller.user)
    _post(client, sku, 1)
    order = Order.objects.get()
    rows = list(csv.reader(io.StringIO(_download(client, order, "csv").lstrip("\ufeff"))))
    assert rows[1][3] == "'=HYPERLINK-000000"
    assert _download(client, order, "txt") == "=HYPERLINK-000000\n"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("group_commit", [False, True])
def test_a_thousand_keys_on_postgresql(settings: Any, group_commit: bool) -> None:
    """One statement claims the keys; through the group-commit path too (a batch of one large checkout)."""
    from tests.concurrency.threads import requires_postgresql

    requires_postgresql()
    settings.KAMENG_CHECKOUT_GROUP_COMMIT = group_commit
    try:
        reseller, sku, secrets = _setup(1000)
        started = time.process_time()
        result = purchase_create(buyer_id=reseller.user_id, sku_id=sku.pk, quantity=1000,
                                 payment=PaymentChoice(PayBy.WALLET), request_id="pg-1000",
                                 sales_channel=SALES_CHANNEL_BATCH)
        cpu = time.process_time() - started
    finally:
        writer_stop()
    order = result.order
    assert (order.status, order.total_amount) == (OrderStatus.DELIVERED, Decimal("8000.00"))
    assert sorted(result.secrets) == sorted(secrets)
    assert CardKey.objects.filter(order=order, status=CardKeyStatus.SOLD).count() == 1000
    assert wallet_balance(user_id=reseller.user_id) == Decimal("2000.00")
    print(f"1,000-key batch checkout (group commit {group_commit}): {cpu:.3f} s process CPU")
    assert cpu < 5  # process CPU for the checkout of 1,000 keys (decrypting them included)
