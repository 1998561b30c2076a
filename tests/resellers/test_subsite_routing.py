"""Sub-site routing: path prefix, subdomain, verified custom domain; Host validation; 404 for a closed one; links
and reverse() stay inside the prefix."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from pytest_django.fixtures import Settings

from kameng.payments.links import payment_notify_url
from kameng.resellers.models import ResellerStatus
from kameng.resellers.subsites import domain_unverify, subsite_enabled_set
from tests.factories import SkuFactory
from tests.resellers.subsite_support import RULES, fresh_subsite_caches, subsite_create

pytestmark = pytest.mark.django_db
__all__ = ["fresh_subsite_caches"]


@pytest.fixture(autouse=True)
def _site(settings: Settings) -> None:
    settings.KAMENG_PRICE_RULES = RULES
    settings.KAMENG_SITE_DOMAIN = "kameng.test"
    settings.ALLOWED_HOSTS = ["testserver", ".kameng.test"]


def test_the_path_prefix_serves_the_branded_sub_site_with_links_inside_it(client: Client) -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    subsite_create(slug="demo", title="小明的卡铺", notice="今日特价：全场点卡")

    response = client.get("/s/demo/")
    body = response.content.decode()

    assert response.status_code == 200
    assert 'data-subsite="demo"' in body
    assert "小明的卡铺" in body
    assert 'data-testid="subsite-notice"' in body
    assert "今日特价：全场点卡" in body
    assert f'href="/s/demo/products/{sku.product_id}/"' in body
    assert 'href="/s/demo/login/"' in body
    assert 'action="/s/demo/search/"' in body
    assert 'href="/login/"' not in body
    assert 'href="/"' not in body
    assert "nav-membership" not in body  # member prices do not apply on a sub-site
    assert get_script_prefix() == "/"  # restored after the request


def test_the_main_site_is_unbranded(client: Client) -> None:
    subsite_create(slug="demo", title="小明的卡铺", notice="今日特价")
    body = client.get("/").content.decode()
    assert "小明的卡铺" not in body
    assert "subsite-notice" not in body
    assert 'href="/login/"' in body


def test_a_prefix_without_its_slash_is_redirected(client: Client) -> None:
    subsite_create(slug="demo")
    response = client.get("/s/demo")
    assert (response.status_code, response["Location"]) == (301, "/s/demo/")


@pytest.mark.parametrize("path", ["/s/nosuch/", "/s/nosuch/products/1/"])
def test_an_unknown_slug_is_404(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "该分站不存在或已关闭" in response.content.decode()


def test_a_disabled_sub_site_and_a_suspended_resellers_are_404(client: Client) -> None:
    closed = subsite_create(slug="closed")
    suspended = subsite_create(slug="gone")
    subsite_enabled_set(subsite_ids=[closed.pk], is_enabled=False)
    suspended.reseller.status = ResellerStatus.SUSPENDED
    suspended.reseller.save()

    assert client.get("/s/closed/").status_code == 404
    assert client.get("/s/gone/").status_code == 404
    assert client.get("/", headers={"host": "closed.kameng.test"}).status_code == 404


@pytest.mark.parametrize("path", ["/s/demo/admin/", "/s/demo/reseller/", "/s/demo/supplier/"])
def test_platform_pages_are_not_served_on_a_sub_site(client: Client, path: str) -> None:
    subsite_create(slug="demo")
    assert client.get(path).status_code == 404


def test_the_subdomain_serves_the_sub_site_and_www_the_main_site(client: Client) -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    subsite_create(slug="demo", title="小明的卡铺")

    response = client.get("/", headers={"host": "demo.kameng.test"})
    body = response.content.decode()
    main = client.get("/", headers={"host": "www.kameng.test"}).content.decode()

    assert response.status_code == 200
    assert "小明的卡铺" in body
    assert f'href="/products/{sku.product_id}/"' in body  # its own host: links at its root
    assert "小明的卡铺" not in main
    assert client.get("/", headers={"host": "nosuch.kameng.test"}).status_code == 404
    assert client.get("/", headers={"host": "a.demo.kameng.test"}).status_code == 404


def test_a_verified_custom_domain_is_served_and_pinned_as_the_host(client: Client) -> None:
    subsite_create(slug="demo", title="小明的卡铺", custom_domain="shop.example.com",
                   domain_token="t", domain_verified_at=timezone.now())

    response = client.get("/", headers={"host": "shop.example.com"})
    redirect = client.get("/orders/", headers={"host": "shop.example.com"})

    assert response.status_code == 200
    assert "小明的卡铺" in response.content.decode()
    assert redirect.status_code == 302
    assert redirect["Location"].startswith("/login/?next=/orders/")


def test_an_unverified_or_unknown_domain_is_a_bad_request(client: Client) -> None:
    subsite_create(slug="demo", custom_domain="shop.example.com", domain_token="t")

    assert client.get("/", headers={"host": "shop.example.com"}).status_code == 400
    assert client.get("/", headers={"host": "evil.example.org"}).status_code == 400
    assert client.get("/s/demo/", headers={"host": "evil.example.org"}).status_code == 400


def test_unverifying_a_domain_stops_serving_it_at_once(client: Client,
                                                      django_capture_on_commit_callbacks: Any) -> None:
    subsite = subsite_create(slug="demo", custom_domain="shop.example.com", domain_token="t",
                             domain_verified_at=timezone.now())
    assert client.get("/", headers={"host": "shop.example.com"}).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        domain_unverify(subsite_ids=[subsite.pk])

    assert client.get("/", headers={"host": "shop.example.com"}).status_code == 400


def test_gateway_addresses_made_on_a_sub_site_stay_at_the_root(client: Client, settings: Settings) -> None:
    """A payment started on /s/demo/ gives the gateway the platform's notify URL, not one under the prefix."""
    from kameng.core.urls import script_prefix_within

    settings.SITE_URL = "https://pay.kameng.test"
    with script_prefix_within("/s/demo/"):
        assert reverse("web:home") == "/s/demo/"
        assert payment_notify_url(channel_code="alipay") == "https://pay.kameng.test/pay/notify/alipay/"
    assert get_script_prefix() == "/"

