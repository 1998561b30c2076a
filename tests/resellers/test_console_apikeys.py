"""The reseller console's API keys page: a key is made with its secret shown once, listed without it, edited and
revoked; the IP allow-list is checked line by line."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from kameng.resellers.apikeys import ip_allowed, ip_allowlist_clean
from kameng.resellers.models import ApiKey, Reseller, ResellerStatus
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "/reseller/api-keys/"


def _logged_in(client: Client) -> Reseller:
    reseller = Reseller.objects.create(user=UserFactory.create(), status=ResellerStatus.ACTIVE)
    client.force_login(reseller.user)
    return reseller


def test_a_new_key_shows_its_secret_once(client: Client) -> None:
    reseller = _logged_in(client)

    created = client.post(URL, {"name": "直播间采购", "ip_allowlist": "203.0.113.0/24\n 198.51.100.7 \n"})
    listed = client.get(URL)

    key = ApiKey.objects.get(reseller=reseller)
    page = created.content.decode()
    secret = re.search(r'data-testid="api-key-secret">([^<]+)<', page)
    assert created.status_code == 200
    assert secret is not None
    assert secret.group(1) == str(key.secret)
    assert created["Cache-Control"] == "no-store"
    assert key.key_id in listed.content.decode()
    assert str(key.secret) not in listed.content.decode()
    assert (key.name, key.ip_allowlist) == ("直播间采购", "203.0.113.0/24\n198.51.100.7")


def test_a_bad_allow_list_is_refused_naming_the_line(client: Client) -> None:
    reseller = _logged_in(client)

    response = client.post(URL, {"name": "k", "ip_allowlist": "10.0.0.1\nnot-an-ip"})

    assert response.status_code == 400
    assert "not-an-ip" in response.content.decode()
    assert not ApiKey.objects.filter(reseller=reseller).exists()


def test_edit_and_revoke(client: Client) -> None:
    reseller = _logged_in(client)
    client.post(URL, {"name": "k1", "ip_allowlist": ""})
    key = ApiKey.objects.get(reseller=reseller)

    edited = client.post(f"{URL}{key.pk}/", {"name": "k2", "ip_allowlist": "2001:db8::/32"})
    revoked = client.post(f"{URL}{key.pk}/revoke/")
    edit_revoked = client.post(f"{URL}{key.pk}/", {"name": "k3", "ip_allowlist": ""})

    key.refresh_from_db()
    assert (edited.status_code, revoked.status_code) == (302, 302)
    assert (key.name, key.ip_allowlist) == ("k2", "2001:db8::/32")
    assert key.revoked_at is not None
    assert edit_revoked.status_code == 400


def test_allow_list_parsing() -> None:
    text = ip_allowlist_clean("10.0.0.0/8, 192.0.2.1\n192.0.2.1\n2001:db8::/32")

    assert text == "10.0.0.0/8\n192.0.2.1\n2001:db8::/32"
    assert ip_allowed(allowlist=text, address="10.200.0.1")
    assert ip_allowed(allowlist=text, address="::ffff:192.0.2.1")
    assert ip_allowed(allowlist=text, address="2001:db8:1::5")
    assert not ip_allowed(allowlist=text, address="192.0.2.2")
    assert not ip_allowed(allowlist=text, address="")
    assert ip_allowed(allowlist="", address="203.0.113.1")
