from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from kameng.accounts.models import User
from kameng.catalog.models import Category, DeliveryKind, Product, Sku
from kameng.core.crypto import decrypt_text
from kameng.core.management.commands.seed_demo import BUYER_FUNDING, DEMO_PASSWORD, KEYS_PER_SKU
from kameng.inventory.models import SECRET_CONTEXT, CardKey, CardKeyStatus
from kameng.ledger.models import Entry, Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.payments.models import PaymentChannel
from kameng.simulators.models import SimulatedEpayMerchant

pytestmark = pytest.mark.django_db


def _seed(keys_per_sku: int = 3) -> dict[str, object]:
    out = StringIO()
    call_command("seed_demo", "--json", keys_per_sku=keys_per_sku, stdout=out)
    return json.loads(out.getvalue())


def _counts() -> dict[str, int]:
    return {
        "users": User.objects.count(), "categories": Category.objects.count(), "products": Product.objects.count(),
        "skus": Sku.objects.count(), "card_keys": CardKey.objects.count(), "journals": Journal.objects.count(),
        "entries": Entry.objects.count(), "channels": PaymentChannel.objects.count(),
        "simulated_merchants": SimulatedEpayMerchant.objects.count(),
    }


def test_seed_demo_twice_gives_the_same_data() -> None:
    first = _seed()
    counts = _counts()
    second = _seed()

    assert _counts() == counts
    # The demo reseller is the 6th user with the 3rd funding journal; the Open API's bulk SKU holds 10 × 3 keys.
    assert counts == {"users": 6, "categories": 4, "products": 10, "skus": 26, "card_keys": 78, "journals": 3,
                      "entries": 6, "channels": 7, "simulated_merchants": 1}
    assert first["summary"]["card_keys_added"] == 51  # type: ignore[index]
    assert second["summary"]["card_keys_added"] == 0  # type: ignore[index]
    assert second["summary"]["wallet_funded"] is False  # type: ignore[index]
    assert first["channel"] == second["channel"]
    assert first["channels"] == second["channels"]
    assert ledger_problems() == []


def test_every_protocol_has_a_simulated_channel_wired_to_its_simulator() -> None:
    from kameng.payments.gateways.registry import gateway_for
    from kameng.simulators.alipay.models import SimulatedAlipayApp
    from kameng.simulators.epay_v2.models import SimulatedEpayV2Merchant
    from kameng.simulators.unionpay.models import SimulatedUnionPayMerchant
    from kameng.simulators.unionpay.services import simulated_unionpay_authority
    from kameng.simulators.wechat.models import SimulatedWechatMerchant

    channels = {channel["code"]: channel for channel in _seed()["channels"]}  # type: ignore[attr-defined]

    assert {code: channel["kind"] for code, channel in channels.items()} == {
        "epay-sim": "epay_v1", "epay-v2-sim": "epay_v2", "alipay-sim": "alipay", "alipay-qr-sim": "alipay",
        "wechat-sim": "wechat_v3", "unionpay-sim": "unionpay"}
    for code, channel in channels.items():
        assert channel["notify_url"] == f"{settings.SITE_URL}/pay/notify/{code}/"
        assert gateway_for(PaymentChannel.objects.get(code=code)) is not None
    v2 = PaymentChannel.objects.get(code="epay-v2-sim")
    assert v2.platform_public_key == SimulatedEpayV2Merchant.objects.get(pid=v2.merchant_id).platform_public_key
    for code in ("alipay-sim", "alipay-qr-sim"):
        alipay = PaymentChannel.objects.get(code=code)
        app = SimulatedAlipayApp.objects.get(app_id=alipay.merchant_id)
        assert alipay.platform_public_key == app.platform_public_key
    assert PaymentChannel.objects.get(code="alipay-qr-sim").pay_type == "precreate"
    wechat = PaymentChannel.objects.get(code="wechat-sim")
    merchant = SimulatedWechatMerchant.objects.get(mchid=wechat.merchant_id)
    assert (wechat.platform_key_id, wechat.merchant_serial_no) == (merchant.platform_public_key_id,
                                                                   merchant.merchant_serial_no)
    assert str(wechat.api_v3_key) == merchant.api_v3_key_text
    unionpay = PaymentChannel.objects.get(code="unionpay-sim")
    unionpay_merchant = SimulatedUnionPayMerchant.objects.get(mer_id=unionpay.merchant_id)
    assert unionpay.merchant_serial_no == unionpay_merchant.cert_id
    assert unionpay.platform_public_key == simulated_unionpay_authority().trust_bundle
    assert unionpay.gateway_url == f"{settings.SITE_URL}/sim/unionpay/gateway/api/"
    assert PaymentChannel.objects.get(code="balance").kind == "balance"


def test_seeded_products_have_two_or_three_skus_each_with_encrypted_stock() -> None:
    _seed()

    upstream = Product.objects.filter(name="影音会员月卡（上游卡密）")  # card keys bought upstream: no stock, one SKU
    for product in Product.objects.exclude(pk__in=upstream):
        assert 2 <= product.skus.count() <= 3, product.name
    bulk = _seed()["openapi"]["sku_id"]  # type: ignore[index]  # the Open API's bulk SKU: 10 × keys_per_sku
    for sku in Sku.objects.filter(product__delivery_kind=DeliveryKind.CARD_KEY).exclude(product__in=upstream):
        assert CardKey.objects.filter(sku=sku, status=CardKeyStatus.AVAILABLE).count() == (30 if sku.pk == bulk else 3)
    key = CardKey.objects.first()
    assert key is not None
    secret = decrypt_text(bytes(key.secret_ciphertext), context=SECRET_CONTEXT)
    assert secret.encode() not in bytes(key.secret_ciphertext)
    assert len(bytes(key.fingerprint)) == 32
    assert 50 <= KEYS_PER_SKU <= 200


def test_the_demo_has_a_product_delivered_by_staff_with_two_skus_and_no_stock() -> None:
    _seed()

    product = Product.objects.get(delivery_kind=DeliveryKind.MANUAL)
    assert product.name == "代充服务"
    assert list(product.skus.values_list("name", "price")) == [("60 元档", Decimal("58.00")),
                                                              ("128 元档", Decimal("124.00"))]
    assert not CardKey.objects.filter(sku__product=product).exists()


def test_demo_buyer_logs_in_and_has_the_funded_balance() -> None:
    _seed()
    buyer = User.objects.get(username="demo")

    assert Client().login(username="demo", password=DEMO_PASSWORD)
    assert wallet_balance(user_id=buyer.pk) == BUYER_FUNDING == Decimal("1000.00")
    journal = Journal.objects.get(reference="demo-seed-wallet:demo")
    assert journal.kind == JournalKind.ADJUSTMENT
    assert sorted((entry.account.code, entry.side, entry.amount) for entry in journal.entries.all()) == [
        ("gateway_clearing:demo-seed", "D", Decimal("1000.00")),
        (f"wallet:{buyer.pk}", "C", Decimal("1000.00")),
    ]


def test_admin_is_a_staff_superuser_with_the_demo_password() -> None:
    _seed()
    admin = User.objects.get(username="admin")

    assert admin.is_staff
    assert admin.is_superuser
    assert admin.check_password(DEMO_PASSWORD)


def test_payment_channel_and_simulated_merchant_share_one_key_kept_across_runs() -> None:
    _seed()
    channel = PaymentChannel.objects.get(code="epay-sim")
    key = str(channel.merchant_key)
    _seed()
    channel.refresh_from_db()
    merchant = SimulatedEpayMerchant.objects.get(pid="1001")

    assert channel.kind == "epay_v1"
    assert channel.merchant_id == "1001"
    assert channel.gateway_url == settings.SITE_URL + "/sim/epay/"
    assert str(channel.merchant_key) == key
    assert len(key) == 32
    assert str(merchant.key) == key
    assert merchant.is_active


def test_seed_follows_a_changed_site_url(settings: pytest.FixtureRequest) -> None:
    _seed()
    settings.SITE_URL = "http://127.0.0.1:8123"  # type: ignore[attr-defined]
    result = _seed()

    channel = PaymentChannel.objects.get(code="epay-sim")
    assert channel.gateway_url == "http://127.0.0.1:8123/sim/epay/"
    assert result["channel"]["notify_url"] == "http://127.0.0.1:8123/pay/notify/epay-sim/"  # type: ignore[index]


def test_human_readable_output_prints_the_logins() -> None:
    out = StringIO()
    call_command("seed_demo", keys_per_sku=1, stdout=out)
    text = out.getvalue()

    assert f"admin / {DEMO_PASSWORD}" in text
    assert f"demo / {DEMO_PASSWORD}" in text
    assert f"login (buyer, VIP4): vip4 / {DEMO_PASSWORD}" in text
    assert "merchant id 1001" in text


def test_the_demo_has_members_at_two_levels_who_see_member_prices(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    from kameng.membership.models import Membership

    with django_capture_on_commit_callbacks(execute=True):  # the price tables are reloaded after commit
        _seed()
        _seed()

    assert sorted(Membership.objects.values_list("user__username", "spend", "level_rank")) == [
        ("demo", Decimal("800.00"), 2), ("vip4", Decimal("6000.00"), 4)]
    monthly = Sku.objects.get(product__name="爱奇艺黄金会员", name="月卡")
    client = Client()
    client.force_login(User.objects.get(username="vip4"))
    page = client.get(f"/products/{monthly.product_id}/").content.decode()
    # VIP4 inherits VIP2's 17.80 on this SKU (the SKU's row beats the category's 9 折).
    assert f'data-testid="member-price-{monthly.pk}">VIP4 价 ¥17.80</span>' in page
    client.force_login(User.objects.get(username="demo"))
    page = client.get(f"/products/{monthly.product_id}/").content.decode()
    assert f'data-testid="member-price-{monthly.pk}">VIP2 价 ¥17.80</span>' in page
