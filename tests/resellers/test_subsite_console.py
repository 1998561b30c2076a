"""The console's sub-site page: open and edit a sub-site, the refusals (slug, cap, logo), per-SKU markups and the
prices they make, the domain steps."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image
from pytest_django.fixtures import Settings

from kameng.core.errors import ApplicationError
from kameng.resellers.models import MarkupKind, ResellerStatus, SubSite, SubSitePrice
from kameng.resellers.subsites import subsite_markup_set, subsite_save
from tests.factories import SkuFactory, UserFactory
from tests.resellers.subsite_support import RULES, fresh_subsite_caches, reseller_create

pytestmark = pytest.mark.django_db
__all__ = ["fresh_subsite_caches"]
PAGE = "/reseller/subsite/"


@pytest.fixture(autouse=True)
def _rules(settings: Settings, tmp_path: object) -> None:
    settings.KAMENG_PRICE_RULES = RULES
    settings.MEDIA_ROOT = str(tmp_path)


def _png(side: int = 128) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def _form(**overrides: object) -> dict[str, object]:
    return {"slug": "my-shop", "title": "我的卡铺", "notice": "欢迎光临", "markup_kind": "percent",
            "markup_value": "10", "is_enabled": "on", **overrides}


def test_a_reseller_opens_a_sub_site_with_a_logo_and_sees_its_prices(client: Client) -> None:
    reseller = reseller_create()
    SkuFactory.create(price=Decimal("100.00"), product__name="控制台点卡")
    client.force_login(reseller.user)

    saved = client.post(PAGE, _form(logo=SimpleUploadedFile("logo.png", _png(), "image/png")))
    page = client.get(PAGE).content.decode()

    subsite = SubSite.objects.get(reseller=reseller)
    assert saved.status_code == 302
    assert (subsite.slug, subsite.title, subsite.markup_value) == ("my-shop", "我的卡铺", Decimal("10.00"))
    assert str(subsite.logo.name).startswith("subsites/")
    assert str(subsite.logo.name).endswith(".webp")
    assert "/s/my-shop/" in page
    assert 'data-testid="subsite-price">¥88.00<' in page  # cost 80.00 + 10 %


@pytest.mark.parametrize(("slug", "code"), [("www", "slug_reserved"), ("admin", "slug_reserved"),
                                            ("openapi", "slug_reserved"), ("ab", "slug_invalid"),
                                            ("Has_Upper", "slug_invalid"), ("-edge", "slug_invalid"),
                                            ("a" * 31, "slug_invalid")])
def test_bad_slugs_are_refused(client: Client, slug: str, code: str) -> None:
    reseller = reseller_create()
    client.force_login(reseller.user)
    response = client.post(PAGE, _form(slug=slug))
    assert response.status_code in (400, 403)
    assert not SubSite.objects.exists()


def test_a_taken_slug_is_refused() -> None:
    subsite_save(reseller_id=reseller_create().pk, slug="taken", title="甲")
    with pytest.raises(ApplicationError) as refused:
        subsite_save(reseller_id=reseller_create().pk, slug="taken", title="乙")
    assert refused.value.code == "slug_taken"
    assert refused.value.status_code == 409


def test_a_markup_over_the_cap_is_refused_with_the_cap(client: Client) -> None:
    reseller = reseller_create(cap="30.00")
    client.force_login(reseller.user)
    response = client.post(PAGE, _form(markup_value="31"))
    assert response.status_code == 400
    assert "加价不能超过您的代理等级上限 30%" in response.content.decode()
    assert not SubSite.objects.exists()


def test_a_fixed_markup_over_the_cap_on_a_sku_names_it() -> None:
    reseller = reseller_create(cap="10.00")
    sku = SkuFactory.create(price=Decimal("10.00"), product__name="便宜卡", name="1 元")
    subsite_save(reseller_id=reseller.pk, slug="capped", title="甲")
    with pytest.raises(ApplicationError) as refused:
        subsite_markup_set(reseller_id=reseller.pk, sku_id=sku.pk, markup_kind=MarkupKind.FIXED, markup_value="0.81")
    assert "便宜卡 1 元" in refused.value.message
    assert "¥0.80" in refused.value.message
    subsite_markup_set(reseller_id=reseller.pk, sku_id=sku.pk, markup_kind=MarkupKind.FIXED, markup_value="0.80")
    assert SubSitePrice.objects.get().markup_value == Decimal("0.80")


def test_a_file_that_is_not_an_image_is_refused_as_a_logo(client: Client) -> None:
    reseller = reseller_create()
    client.force_login(reseller.user)
    response = client.post(PAGE, _form(logo=SimpleUploadedFile("logo.png", b"<script>", "image/png")))
    assert response.status_code == 400
    assert "无法识别的图片" in response.content.decode()
    assert not SubSite.objects.exists()


def test_a_too_large_logo_is_refused() -> None:
    with pytest.raises(ApplicationError, match="1 MB"):
        subsite_save(reseller_id=reseller_create().pk, slug="big-logo", title="甲", logo=b"x" * (1024 * 1024 + 1))


def test_per_sku_markups_are_set_and_removed_from_the_page(client: Client) -> None:
    reseller = reseller_create()
    sku = SkuFactory.create(price=Decimal("100.00"))
    client.force_login(reseller.user)
    client.post(PAGE, _form())

    client.post("/reseller/subsite/markups/", {"sku_id": sku.pk, "markup_kind": "fixed", "markup_value": "2.50"})
    assert 'data-testid="subsite-price">¥82.50<' in client.get(PAGE).content.decode()
    client.post(f"/reseller/subsite/markups/{sku.pk}/remove/")
    assert not SubSitePrice.objects.exists()


def test_the_domain_steps_show_the_token(client: Client) -> None:
    reseller = reseller_create()
    client.force_login(reseller.user)
    client.post(PAGE, _form())
    client.post("/reseller/subsite/domain/", {"domain": "shop.example.com"})
    page = client.get(PAGE).content.decode()
    token = SubSite.objects.get().domain_token
    assert "_kameng-verify.shop.example.com" in page
    assert token in page
    assert "http://shop.example.com/.well-known/kameng-verify.txt" in page


def test_a_pending_reseller_and_a_buyer_get_404(client: Client) -> None:
    client.force_login(reseller_create(status=ResellerStatus.PENDING).user)
    assert client.get(PAGE).status_code == 404
    client.force_login(UserFactory.create())
    assert client.get(PAGE).status_code == 404


def test_the_console_navigation_lists_the_page(client: Client) -> None:
    client.force_login(reseller_create().user)
    assert 'href="/reseller/subsite/"' in client.get("/reseller/").content.decode()
