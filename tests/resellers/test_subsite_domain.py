"""Custom domains: claim, verification by DNS TXT (resolver seam) or by file (fetcher seam), the refusals, and the
SSRF care of the file fetch."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_django.fixtures import Settings

from kameng.core.errors import ApplicationError
from kameng.resellers import domain_probe
from kameng.resellers.models import SubSite
from kameng.resellers.subsites import domain_claim, domain_clean, domain_remove, domain_verify
from tests.resellers.subsite_support import fresh_subsite_caches, subsite_create

pytestmark = pytest.mark.django_db
__all__ = ["fresh_subsite_caches"]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the internet answers: TXT records by name, file bodies by domain."""
    world: dict[str, Any] = {"txt": {}, "files": {}, "asked": []}

    def txt(name: str) -> list[str]:
        world["asked"].append(("txt", name))
        return list(world["txt"].get(name, []))

    def fetch(domain: str) -> str:
        world["asked"].append(("file", domain))
        return str(world["files"].get(domain, ""))

    monkeypatch.setattr(domain_probe, "TXT_RESOLVER", txt)
    monkeypatch.setattr(domain_probe, "FILE_FETCHER", fetch)
    return world


def _claimed() -> SubSite:
    subsite = subsite_create(slug="demo")
    return domain_claim(reseller_id=subsite.reseller_id, domain="Shop.Example.COM.")


def test_a_claim_stores_the_domain_unverified_with_a_token() -> None:
    subsite = _claimed()
    assert subsite.custom_domain == "shop.example.com"
    assert len(subsite.domain_token) >= 24
    assert subsite.domain_verified_at is None


def test_the_dns_txt_record_verifies(published: dict[str, Any]) -> None:
    subsite = _claimed()
    published["txt"]["_kameng-verify.shop.example.com"] = ["other", subsite.domain_token]

    verified = domain_verify(reseller_id=subsite.reseller_id)

    assert verified.domain_verified_at is not None
    assert published["asked"] == [("txt", "_kameng-verify.shop.example.com")]


def test_the_file_verifies_when_dns_does_not(published: dict[str, Any]) -> None:
    subsite = _claimed()
    published["files"]["shop.example.com"] = subsite.domain_token + "\n"

    assert domain_verify(reseller_id=subsite.reseller_id).domain_verified_at is not None


def test_nothing_published_is_refused_and_nothing_recorded(published: dict[str, Any]) -> None:
    subsite = _claimed()
    published["txt"]["_kameng-verify.shop.example.com"] = ["wrong-token"]
    with pytest.raises(ApplicationError) as refused:
        domain_verify(reseller_id=subsite.reseller_id)
    assert refused.value.code == "domain_not_verified"
    assert "域名验证未通过" in refused.value.message
    assert SubSite.objects.get(pk=subsite.pk).domain_verified_at is None


def test_a_new_claim_needs_a_new_verification(published: dict[str, Any]) -> None:
    subsite = _claimed()
    published["files"]["shop.example.com"] = subsite.domain_token
    domain_verify(reseller_id=subsite.reseller_id)

    again = domain_claim(reseller_id=subsite.reseller_id, domain="other.example.com")

    assert again.domain_verified_at is None
    assert again.domain_token != subsite.domain_token
    domain_remove(reseller_id=subsite.reseller_id)
    assert SubSite.objects.get(pk=subsite.pk).custom_domain is None


def test_a_domain_of_another_sub_site_is_refused() -> None:
    _claimed()
    other = subsite_create(slug="other")
    with pytest.raises(ApplicationError) as refused:
        domain_claim(reseller_id=other.reseller_id, domain="shop.example.com")
    assert refused.value.code == "domain_taken"


@pytest.mark.parametrize("domain", ["localhost", "127.0.0.1", "exa mple.com", "-bad.example.com", "a" * 260 + ".com",
                                    "demo.kameng.test", "kameng.test", "testserver"])
def test_malformed_and_platform_domains_are_refused(domain: str, settings: Settings) -> None:
    settings.KAMENG_SITE_DOMAIN = "kameng.test"
    with pytest.raises(ApplicationError):
        domain_clean(domain)


def test_a_chinese_domain_is_stored_in_punycode() -> None:
    assert domain_clean("商店.中国") == "xn--czrs0t.xn--fiqs8s"


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.8", "192.168.1.1", "169.254.169.254", "::1", "fd00::1"])
def test_the_file_fetch_refuses_private_addresses(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    monkeypatch.setattr(domain_probe.socket, "getaddrinfo",
                        lambda *args, **kwargs: [(None, None, None, "", (address, 80))])
    with pytest.raises(domain_probe.ProbeError, match="内网或保留地址"):
        domain_probe.http_verification_file("shop.example.com")


def test_a_name_resolving_to_a_public_and_a_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(domain_probe.socket, "getaddrinfo", lambda *args, **kwargs: [
        (None, None, None, "", ("93.184.216.34", 80)), (None, None, None, "", ("127.0.0.1", 80))])
    with pytest.raises(domain_probe.ProbeError):
        domain_probe.vetted_address("shop.example.com")


def test_a_probe_error_is_told_to_the_reseller(monkeypatch: pytest.MonkeyPatch) -> None:
    subsite = _claimed()

    def refuse(name: str) -> list[str]:
        raise domain_probe.ProbeError("DNS 查询失败，请稍后重试")

    monkeypatch.setattr(domain_probe, "TXT_RESOLVER", refuse)
    monkeypatch.setattr(domain_probe, "FILE_FETCHER", lambda domain: "")
    with pytest.raises(ApplicationError, match="DNS 查询失败"):
        domain_verify(reseller_id=subsite.reseller_id)
