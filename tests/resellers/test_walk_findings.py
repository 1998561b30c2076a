"""What a walk through the reseller features in a browser found, kept fixed: the console menu of a pending reseller,
the buyer's view of a sub-site order, API key names, reactivating an applicant, the batch page's refusals, the
per-SKU markup form and the callback log's long responses."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from kameng.core.errors import ConflictError
from kameng.orders.models import Order
from kameng.resellers.apikeys import api_key_create, api_key_update
from kameng.resellers.models import ResellerStatus, SubSitePrice
from kameng.resellers.services import ResellerStateError, reseller_reactivate
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.resellers.subsite_support import RULES, fresh_subsite_caches, subsite_create
from tests.resellers.support import reseller_make, tier_make

pytestmark = pytest.mark.django_db
__all__ = ["fresh_subsite_caches"]

NAV_RE = re.compile(r'<nav class="card console-nav".*?</nav>', re.S)


def _nav_links(page: str) -> list[str]:
    found = NAV_RE.search(page)
    assert found is not None
    return re.findall(r'href="([^"]+)"', found.group(0))


def test_a_pending_reseller_is_offered_only_the_overview(client: Client) -> None:
    pending = reseller_make(None, status=ResellerStatus.PENDING)
    client.force_login(pending.user)
    page = client.get(reverse("web:reseller_home")).content.decode()
    assert _nav_links(page) == [reverse("web:reseller_home")]  # the others answer 404 to it


def test_an_approved_reseller_gets_the_menu_in_the_order_of_use(client: Client) -> None:
    active = reseller_make(tier_make())
    client.force_login(active.user)
    links = _nav_links(client.get(reverse("web:reseller_home")).content.decode())
    assert links[:4] == [reverse(name) for name in ("web:reseller_home", "web:reseller_prices", "web:reseller_batch",
                                                     "web:reseller_subsite")]
    assert len(links) == 9
    for link in links:
        assert client.get(link).status_code == 200, link


def test_the_buyer_of_a_sub_site_order_does_not_see_the_resellers_cost_and_markup(settings: Settings) -> None:
    settings.KAMENG_PRICE_RULES = RULES
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("20.00"))
    stock_sku(sku, 2)
    subsite = subsite_create(slug="demo")
    SubSitePrice.objects.create(subsite=subsite, sku=sku, markup_kind="fixed", markup_value=Decimal("0.70"))
    client = Client()
    client.force_login(buyer)
    bought = client.post(f"/s/demo/products/{sku.product_id}/buy/", {
        "sku": sku.pk, "quantity": 1, "request_id": "walk-subsite-1", "payment_method": "balance"})
    order = Order.objects.get(buyer=buyer)
    assert [line["code"] for line in order.price_lines] == ["reseller_cost", "subsite_markup"]  # kept for earnings
    page = client.get(bought["Location"]).content.decode()
    assert "16.70" in page
    for hidden in ("分站成本价", "分站加价", "price-line-reseller_cost", "price-line-subsite_markup", "-4.00"):
        assert hidden not in page, hidden


def test_two_keys_in_use_may_not_share_a_name(client: Client) -> None:
    reseller = reseller_make(tier_make())
    first = api_key_create(reseller_id=reseller.pk, name="直播间").key
    with pytest.raises(ConflictError) as refused:
        api_key_create(reseller_id=reseller.pk, name=" 直播间 ")
    assert refused.value.code == "api_key_name_taken"
    other = api_key_create(reseller_id=reseller.pk, name="网店").key
    with pytest.raises(ConflictError):
        api_key_update(reseller_id=reseller.pk, api_key_pk=other.pk, name="直播间", ip_allowlist="")
    api_key_update(reseller_id=reseller.pk, api_key_pk=first.pk, name="直播间", ip_allowlist="10.0.0.1")  # itself
    client.force_login(reseller.user)
    page = client.post(reverse("web:reseller_apikeys"), {"name": "直播间", "ip_allowlist": ""})
    assert page.status_code == 409
    body = page.content.decode()
    assert body.count("已有名为「直播间」的有效密钥，请换一个名称") == 1  # once, above the page
    client.post(reverse("web:reseller_apikey_revoke", args=[first.pk]))
    assert client.post(reverse("web:reseller_apikeys"), {"name": "直播间", "ip_allowlist": ""}).status_code == 200


def test_reactivating_an_applicant_names_the_state_not_the_missing_tier() -> None:
    pending = reseller_make(None, status=ResellerStatus.PENDING)
    with pytest.raises(ResellerStateError) as refused:
        reseller_reactivate(reseller_id=pending.pk, staff_id=UserFactory.create(is_staff=True).pk)
    assert refused.value.code == "reseller_state"


def _batch_setup(settings: Settings, funds: str) -> tuple[Any, Any]:
    settings.KAMENG_PRICE_RULES = ["kameng.resellers.pricing.reseller_price_rule"]
    reseller = reseller_make(tier_make(discount="20.00"))
    sku = SkuFactory.create(price=Decimal("10.00"), product__name="抖币卡", name="10 元")
    stock_sku(sku, 5)
    fund_wallet(reseller.user, funds, reference=f"walk-batch-{reseller.pk}")
    return reseller, sku


def test_the_batch_page_prices_each_option_and_says_how_much_is_missing(client: Client,
                                                                         settings: Settings) -> None:
    reseller, sku = _batch_setup(settings, "20.00")
    client.force_login(reseller.user)
    page = client.get(reverse("web:reseller_batch")).content.decode()
    assert f'<option value="{sku.pk}">抖币卡 · 10 元 · ¥8.00</option>' in page
    refused = client.post(reverse("web:reseller_batch"), {"sku": str(sku.pk), "quantity": "5", "request_id": ""})
    assert refused.status_code in (402, 409)
    body = refused.content.decode()
    message = "钱包余额不足：本单需 ¥40.00（5 × ¥8.00），当前余额 ¥20.00，请先充值或减少数量"
    assert body.count(message) == 1
    assert 'data-testid="batch-topup"' in body
    assert 'value="5"' in body  # the quantity typed is kept


def test_a_refused_sku_markup_keeps_the_sku_and_says_which_field(client: Client, settings: Settings) -> None:
    settings.KAMENG_PRICE_RULES = RULES
    skus = [SkuFactory.create(price=Decimal("20.00")) for _ in range(3)]
    subsite = subsite_create(slug="walk")
    client.force_login(subsite.reseller.user)
    chosen = skus[2]
    page = client.post(reverse("web:reseller_subsite_markup"),
                       {"sku_id": str(chosen.pk), "markup_kind": "fixed", "markup_value": "-1"})
    assert page.status_code == 400
    body = page.content.decode()
    assert f'<option value="{chosen.pk}" selected>' in body
    form = body.split('data-testid="markup-form"')[1].split("</form>")[0]
    assert 'class="field-error"' in form


def test_the_subsite_table_flags_a_price_above_the_main_sites(client: Client, settings: Settings) -> None:
    settings.KAMENG_PRICE_RULES = RULES
    SkuFactory.create(price=Decimal("20.00"))  # the owner's cost 16.00 (20 % off), + 40 % = 22.40 > 20.00
    subsite = subsite_create(slug="walk", markup_value="40.00")
    client.force_login(subsite.reseller.user)
    body = client.get(reverse("web:reseller_subsite")).content.decode()
    assert 'data-testid="above-retail"' in body


def test_the_invite_page_states_the_commission_rates(client: Client) -> None:
    reseller = reseller_make(tier_make())
    client.force_login(reseller.user)
    body = client.get(reverse("web:reseller_promotion")).content.decode()
    assert 'data-testid="commission-rates"' in body
    assert "第 1 级 5.00%" in body  # the defaults of CommissionSettings
    assert "第 2 级 2.00%" in body


def test_the_callback_log_wraps_long_values_instead_of_using_the_page_container_class() -> None:
    from pathlib import Path

    import kameng.web

    template = Path(kameng.web.__file__).parent / "templates/web/reseller/notifications.html"
    text = template.read_text(encoding="utf-8")
    assert 'class="wrap"' not in text  # .wrap is the page's container (max-width, padding)
    assert text.count('class="break-anywhere"') == 2


def test_revoking_a_key_asks_first(client: Client) -> None:
    reseller = reseller_make(tier_make())
    key = api_key_create(reseller_id=reseller.pk, name="直播间").key
    client.force_login(reseller.user)
    url = reverse("web:reseller_apikey_revoke", args=[key.pk])
    listed = client.get(reverse("web:reseller_apikeys")).content.decode()
    assert f'href="{url}" data-testid="api-key-revoke"' in listed  # a link to the question, not a POST
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "吊销后无法恢复" in confirm.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
    assert client.post(url).status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert client.get(url)["Location"] == reverse("web:reseller_apikeys")  # nothing to ask any more


def test_a_refused_logo_is_explained_once_beside_its_field(client: Client, settings: Settings) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.KAMENG_PRICE_RULES = RULES
    subsite = subsite_create(slug="walk")
    client.force_login(subsite.reseller.user)
    page = client.post(reverse("web:reseller_subsite"), {
        "slug": "walk", "title": "演示分站", "notice": "", "markup_kind": "percent", "markup_value": "10",
        "is_enabled": "on", "logo": SimpleUploadedFile("logo.png", b"not an image", content_type="image/png")})
    assert page.status_code == 400
    body = page.content.decode()
    assert body.count("无法识别的图片") == 1
    assert "请检查分站设置" in body


def test_applying_again_after_a_rejection_starts_from_the_earlier_application(client: Client) -> None:
    rejected = reseller_make(None, status=ResellerStatus.REJECTED)
    rejected.application_note = "抖音直播间，月采购 2 万"
    rejected.save(update_fields=["application_note"])
    client.force_login(rejected.user)
    body = client.get(reverse("web:reseller_apply")).content.decode()
    assert 'value="13800000000"' in body  # the contact reseller_make gives
    assert "抖音直播间，月采购 2 万</textarea>" in body
