from __future__ import annotations

import ast
import gettext
import os
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from kameng.core.errors import ApplicationError
from kameng.orders.models import Order
from kameng.orders.services import order_checkout
from kameng.payments.models import Payment
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db


def _switch(client: Client, language: str, next_url: str = "/") -> None:
    response = client.post(reverse("set_language"), {"language": language, "next": next_url})
    assert response.status_code == 302
    assert response["Location"] == next_url


def test_storefront_speaks_chinese_by_default(client: Client) -> None:
    body = client.get(reverse("web:home")).content.decode()

    assert '<html lang="zh-hans">' in body
    assert "首页" in body
    assert 'data-testid="lang-en"' in body


def test_language_switch_shows_english_text(client: Client) -> None:
    sku = SkuFactory.create(product__name="王者荣耀点券", price=Decimal("5.80"))
    stock_sku(sku, 3)

    _switch(client, "en")
    body = client.get(reverse("web:home")).content.decode()

    assert '<html lang="en">' in body
    assert "Home" in body
    assert "首页" not in body
    assert "Log in" in body
    assert "Sign up" in body
    assert "3 in stock" in body
    assert "王者荣耀点券" in body  # catalogue data is not translated
    assert 'data-testid="lang-zh"' in body

    _switch(client, "zh-hans")
    assert "首页" in client.get(reverse("web:home")).content.decode()


def test_order_page_status_and_timeline_are_translated(client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "20.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order
    client.force_login(buyer)

    _switch(client, "en")
    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()

    assert "Delivered" in body
    assert "Paid from wallet balance" in body
    assert "Download TXT" in body
    assert "已发货" not in body


def test_service_errors_are_translated(client: Client) -> None:
    client.force_login(UserFactory.create())
    sku = SkuFactory.create()

    _switch(client, "en")
    response = client.post(reverse("web:buy", args=[sku.product_id]), {"sku": sku.pk, "quantity": 1})

    assert response.status_code == 409
    assert "Sold out" in response.content.decode()


def test_an_english_browser_still_gets_chinese_until_it_chooses(client: Client) -> None:
    body = client.get(reverse("web:home"), headers={"Accept-Language": "en-US,en;q=0.9"}).content.decode()

    assert '<html lang="zh-hans">' in body
    assert "首页" in body


def test_an_unknown_language_cookie_falls_back_to_chinese(client: Client) -> None:
    client.cookies["django_language"] = "xx"

    body = client.get(reverse("web:home")).content.decode()

    assert "首页" in body


def test_errors_with_values_in_them_are_translated_and_filled_in(client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    client.force_login(buyer)
    sku = SkuFactory.create(price=Decimal("1.00"), product__max_quantity=20)
    stock_sku(sku, 3)
    buy = reverse("web:buy", args=[sku.product_id])

    _switch(client, "en")
    too_many = client.post(buy, {"sku": sku.pk, "quantity": 21})
    short = client.post(buy, {"sku": sku.pk, "quantity": 5})

    assert too_many.status_code == 400
    assert "Quantity must be between 1 and 20" in too_many.content.decode()
    assert short.status_code == 409
    assert "Not enough stock: only 3 left" in short.content.decode()

    _switch(client, "zh-hans")
    assert "库存不足，仅剩 3 件" in client.post(buy, {"sku": sku.pk, "quantity": 5}).content.decode()


def test_a_status_inside_an_error_is_translated_too(client: Client) -> None:
    from django.utils import translation

    from kameng.core.errors import ConflictError
    from kameng.web.errors import message_for

    error = ConflictError("订单当前状态为「%(status)s」，不能取消", params={"status": "已取消"})

    assert error.message == "订单当前状态为「已取消」，不能取消"
    with translation.override("en"):
        assert message_for(error) == "This order is “Cancelled” and can no longer be cancelled"


def test_topup_amount_limits_are_translated(client: Client) -> None:
    from kameng.payments.models import ChannelKind, PaymentChannel

    client.force_login(UserFactory.create())
    PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                  gateway_url="https://pay.example.com/", merchant_id="1001", merchant_key="k" * 32)

    _switch(client, "en")
    response = client.post(reverse("web:topup"), {"channel": "epay", "amount": "0.5"})

    assert response.status_code == 400
    assert "The amount must be at least ¥1.00" in response.content.decode()


def test_switching_language_on_a_refused_form_returns_to_a_page_that_exists(client: Client) -> None:
    client.force_login(UserFactory.create())
    sku = SkuFactory.create(price=Decimal("1.00"), product__max_quantity=20)
    stock_sku(sku, 3)

    refused = client.post(reverse("web:buy", args=[sku.product_id]), {"sku": sku.pk, "quantity": 21})
    product_url = reverse("web:product", args=[sku.product_id])
    assert f'name="next" value="{product_url}"' in refused.content.decode()

    refused_topup = client.post(reverse("web:topup"), {"channel": "nope", "amount": "x"})
    assert f'name="next" value="{reverse("web:wallet")}"' in refused_topup.content.decode()


@pytest.mark.parametrize(("name", "destination"), [("web:topup", "web:wallet"), ("web:logout", "web:home")])
def test_a_get_on_a_post_only_address_goes_somewhere_useful(client: Client, name: str, destination: str) -> None:
    user = UserFactory.create()
    client.force_login(user)

    response = client.get(reverse(name))

    assert response.status_code == 302
    assert response["Location"] == reverse(destination)
    assert client.session.get("_auth_user_id") == str(user.pk)  # a GET never logs anyone out


def test_a_get_on_the_buy_address_goes_to_the_product(client: Client) -> None:
    sku = SkuFactory.create()

    response = client.get(reverse("web:buy", args=[sku.product_id]))

    assert response.status_code == 302
    assert response["Location"] == reverse("web:product", args=[sku.product_id])
def test_every_domain_text_has_an_english_translation() -> None:
    from django.utils import translation

    from kameng.web.i18n_catalog import DOMAIN_TEXTS

    with translation.override("en"):
        untranslated = [text for text in DOMAIN_TEXTS if translation.gettext(text) == text]

    assert untranslated == []


def test_an_order_total_over_the_limit_is_a_translated_form_error(client: Client) -> None:
    client.force_login(UserFactory.create())
    sku = SkuFactory.create(price=Decimal("9999999999.99"), product__max_quantity=500)
    stock_sku(sku, 101)

    _switch(client, "en")
    response = client.post(reverse("web:buy", args=[sku.product_id]), {"sku": sku.pk, "quantity": 101})

    assert response.status_code == 400
    assert "An order may total at most ¥999999999999.99: at most 100 of this item per order" in (
        response.content.decode())


# --- the English catalogs are complete, and the newest pages read English ---------------------------------------

# the apps whose en catalog the storefront (and the buyer's e-mail) reads (admin: Chinese only)
STOREFRONT_CATALOG_APPS = ("web", "orders", "notices")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")


def _po_entries(path: Path) -> list[tuple[set[str], str, str]]:
    """(flags, msgid, msgstr) of every entry of a .po file; plural entries give their first msgstr."""
    entries: list[tuple[set[str], str, str]] = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        flags: set[str] = set()
        fields: dict[str, str] = {}
        current = ""
        for line in block.splitlines():
            if line.startswith("#,"):
                flags |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith("#~"):
                flags.add("obsolete")
            elif line.startswith("msg"):
                current, _, text = line.partition(" ")
                fields.setdefault(current, ast.literal_eval(text))
            elif line.startswith('"') and current:
                fields[current] += ast.literal_eval(line)
        if "obsolete" in flags or fields.get("msgid"):
            entries.append((flags, fields.get("msgid", ""), fields.get("msgstr", fields.get("msgstr[0]", ""))))
    return entries


@pytest.mark.parametrize("app", STOREFRONT_CATALOG_APPS)
def test_the_english_catalog_has_no_untranslated_fuzzy_or_obsolete_entry(app: str) -> None:
    entries = _po_entries(Path(settings.BASE_DIR) / "kameng" / app / "locale" / "en" / "LC_MESSAGES" / "django.po")

    assert [msgid for _, msgid, msgstr in entries if not msgstr] == []
    assert [msgid for flags, msgid, _ in entries if "fuzzy" in flags] == []
    assert [msgid for flags, msgid, _ in entries if "obsolete" in flags] == []
    msgids = [msgid for _, msgid, _ in entries]
    assert sorted({msgid for msgid in msgids if msgids.count(msgid) > 1}) == []


@pytest.mark.parametrize("app", STOREFRONT_CATALOG_APPS)
def test_the_compiled_catalog_matches_its_po_file(app: str) -> None:
    folder = Path(settings.BASE_DIR) / "kameng" / app / "locale" / "en" / "LC_MESSAGES"
    with (folder / "django.mo").open("rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)

    stale = [msgid for _, msgid, msgstr in _po_entries(folder / "django.po")
             if catalog.gettext(msgid) != msgstr and "%(" not in msgid]  # plurals are checked through the pages

    assert stale == []


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="gettext is not installed")
@pytest.mark.parametrize("app", STOREFRONT_CATALOG_APPS)
def test_makemessages_finds_no_text_the_english_catalog_lacks(app: str, tmp_path: Path) -> None:
    """The procedure written in i18n_catalog.py, run on a copy: a new {% translate %}, _() or catalog entry without
    its English fails here instead of showing Chinese on the English storefront."""
    copy = tmp_path / app
    shutil.copytree(Path(settings.BASE_DIR) / "kameng" / app, copy, ignore=shutil.ignore_patterns("static", "*.mo"))
    environment = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}

    # -P: the copy's selectors.py must not shadow the standard library's
    subprocess.run([sys.executable, "-P", "-m", "django", "makemessages", "-l", "en", "--no-obsolete", "--no-wrap"],
                   cwd=copy, env=environment, check=True, capture_output=True)

    entries = _po_entries(copy / "locale" / "en" / "LC_MESSAGES" / "django.po")
    assert [msgid for _, msgid, msgstr in entries if not msgstr] == []
    assert [msgid for flags, msgid, _ in entries if "fuzzy" in flags] == []
    committed = _po_entries(Path(settings.BASE_DIR) / "kameng" / app / "locale" / "en" / "LC_MESSAGES" / "django.po")
    assert sorted({msgid for _, msgid, _ in committed} - {msgid for _, msgid, _ in entries}) == []  # none left over


def _main_text(body: str, *data: str) -> str:
    """The page's main content, without markup and without the catalogue data shown in it (names stay Chinese)."""
    main = body.split("<main", 1)[1].split("</main>", 1)[0]
    text = re.sub(r"<[^>]*>", " ", main)
    for value in data:
        text = text.replace(value, " ")
    return text


def _order_with_a_payment_in_flight(client: Client) -> tuple[Order, Payment]:
    from kameng.payments.models import ChannelKind, PaymentChannel
    from kameng.payments.services import order_payment_start

    buyer = UserFactory.create()
    fund_wallet(buyer, "50.00")
    client.force_login(buyer)
    sku = SkuFactory.create(product__name="腾讯视频月卡", name="30 天", price=Decimal("8.00"))
    stock_sku(sku, 2)
    PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                  gateway_url="https://pay.example.com/", merchant_id="1001",
                                  merchant_key="i18n-merchant-key-0123456789abcdef")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    payment = order_payment_start(order_id=order.pk, buyer_id=buyer.pk, channel_code="epay").payment
    assert payment is not None
    return order, payment


def test_the_order_page_confirming_a_payment_reads_english(client: Client) -> None:
    order, payment = _order_with_a_payment_in_flight(client)
    _switch(client, "en")

    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    badge = client.get(reverse("web:order_status", args=[order.number])).content.decode()

    assert f"Confirming payment: your 易支付 payment (payment {payment.number}) is waiting for the gateway" in body
    assert "Confirming payment" in badge
    assert CJK.findall(_main_text(body, order.title, "易支付")) == []
    assert CJK.findall(_main_text(f"<main>{badge}</main>")) == []


def test_the_second_payment_confirmation_reads_english(client: Client) -> None:
    order, payment = _order_with_a_payment_in_flight(client)
    _switch(client, "en")

    asked = client.post(reverse("web:order_pay", args=[order.number]), {"channel": "balance"})

    assert asked.status_code == 409
    body = asked.content.decode()
    assert "A payment is already being confirmed" in body
    assert "A “易支付” payment for this order is being confirmed; if you have paid, please wait" in body
    assert f"易支付 payment {payment.number}, started at" in body
    assert "If you pay again, this order will be paid twice" in body
    assert "Pay again anyway" in body
    assert CJK.findall(_main_text(body, "易支付")) == []


def test_the_cancel_confirmation_reads_english(client: Client) -> None:
    order, _ = _order_with_a_payment_in_flight(client)
    _switch(client, "en")

    body = client.get(reverse("web:order_cancel", args=[order.number])).content.decode()

    assert "Cancel this order?" in body
    assert f"(order {order.number}, ¥8.00) is cancelled, the stock held for it is released" in body
    assert "A payment for this order is being confirmed." in body
    assert "Keep the order" in body
    assert CJK.findall(_main_text(body, order.title)) == []


def test_search_results_and_the_empty_search_read_english(client: Client) -> None:
    sku = SkuFactory.create(product__name="Steam 充值卡", product__category__name="游戏平台", name="100 元")
    stock_sku(sku, 1)
    _switch(client, "en")

    found = client.get(reverse("web:search"), {"q": "Steam"}).content.decode()
    empty = client.get(reverse("web:search"), {"q": "zzzz"}).content.decode()
    blank = client.get(reverse("web:search"), {"q": ""}).content.decode()

    assert "1 product found" in found
    assert "1 in stock" in found
    data = ("Steam 充值卡", "游戏平台", "100 元")
    assert CJK.findall(_main_text(found, *data)) == []
    assert CJK.findall(_main_text(empty, *data)) == []
    assert CJK.findall(_main_text(blank, *data)) == []
    assert 'data-testid="search-empty"' in empty
    assert 'data-testid="search-empty"' in blank


def test_the_503_page_reads_english(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import OperationalError, connection

    client = Client(raise_request_exception=False)
    client.cookies["django_language"] = "en"

    def refuse(*_args: object, **_kwargs: object) -> object:
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patch:
        patch.setattr(connection, "create_cursor", refuse)
        response = client.get(reverse("web:home"))

    assert response.status_code == 503
    body = response.content.decode()
    assert "Service temporarily unavailable" in body
    assert "reload this page in 5 seconds" in body
    assert CJK.findall(_main_text(body)) == []


def test_an_illegal_order_move_is_explained_in_english() -> None:
    from django.utils import translation

    from kameng.orders.models import OrderStatus
    from kameng.orders.state import IllegalTransitionError, transition
    from kameng.web.errors import message_for

    buyer = UserFactory.create()
    fund_wallet(buyer, "10.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order

    with pytest.raises(IllegalTransitionError) as refused:
        transition(order, OrderStatus.PENDING_PAYMENT)

    assert refused.value.message == "订单状态为「已发货」，不能变为「待支付」"
    with translation.override("en"):
        assert message_for(refused.value) == "This order is “Delivered” and cannot become “Awaiting payment”"


def test_paying_outside_the_channel_range_is_refused_in_english() -> None:
    from django.utils import translation

    from kameng.payments.models import ChannelKind, PaymentChannel
    from kameng.payments.services import order_payment_start
    from kameng.web.errors import message_for

    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("150.00"))
    stock_sku(sku, 1)
    PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                  gateway_url="https://pay.example.com/", merchant_id="1001", merchant_key="k" * 32,
                                  min_amount=Decimal("2.00"), max_amount=Decimal("100.00"))
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order

    with pytest.raises(ApplicationError) as refused:
        order_payment_start(order_id=order.pk, buyer_id=buyer.pk, channel_code="epay")

    assert refused.value.message == "「易支付」单笔金额需在 ¥2.00–¥100.00 之间，请换一种支付方式"
    with translation.override("en"):
        assert message_for(refused.value) == (
            "“易支付” takes payments of ¥2.00–¥100.00 only; please choose another payment method")
    assert Payment.objects.count() == 0
