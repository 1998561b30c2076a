"""One-tap login (一键登录) through the demo's simulated carrier: the page, the token, forged/expired/replayed."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.test import Client, override_settings
from django.urls import reverse

from kameng.accounts.models import User
from kameng.accounts.phone_login import phone_login_with_onetap
from kameng.accounts.selectors import phone_index_of
from kameng.core.errors import ApplicationError
from kameng.simulators.onetap import simulated_onetap_token

pytestmark = pytest.mark.django_db

PHONE = "13800000000"


def _carrier_token(client: Client, phone: str = PHONE, back: str = "/login/?tab=onetap") -> str:
    response = client.post(reverse("simulators:onetap"), {"phone": phone, "return": back, "login": "1"})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/login/"
    return parse_qs(location.query)["onetap_token"][0]


def _refusal(token: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        phone_login_with_onetap(token=token)
    return refused.value


def test_the_carrier_page_shows_the_number_masked(client: Client) -> None:
    body = client.get(reverse("simulators:onetap"), {"phone": "13912345678"}).content.decode()

    assert "本机号码 139****5678" in body
    assert "一键登录" in body


def test_a_carrier_token_logs_in_and_registers_an_unknown_number(client: Client) -> None:
    token = _carrier_token(client)

    result = phone_login_with_onetap(token=token, address="198.51.100.7")

    assert result.created is True
    assert result.user.phone == PHONE
    assert User.objects.filter(phone_index=phone_index_of(PHONE)).count() == 1
    again = phone_login_with_onetap(token=_carrier_token(client))
    assert (again.created, again.user.pk) == (False, result.user.pk)


def test_a_replayed_token_is_refused(client: Client) -> None:
    token = _carrier_token(client)
    phone_login_with_onetap(token=token)

    error = _refusal(token)

    assert (error.code, error.status_code) == ("onetap_token_used", 400)
    assert error.message == "一键登录凭证已使用过，请重新一键登录"


def test_an_expired_token_is_refused(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    token = _carrier_token(client)
    later = signing.time.time() + 121  # type: ignore[attr-defined]
    monkeypatch.setattr(signing.time, "time", lambda: later)  # type: ignore[attr-defined]

    error = _refusal(token)

    assert (error.code, error.status_code) == ("onetap_token_expired", 400)
    assert User.objects.count() == 0


@pytest.mark.parametrize("forge", [
    lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # the signature altered
    lambda token: signing.dumps({"phone": "13900000000", "nonce": "x"}, salt="another-salt"),  # another key/salt
    lambda token: signing.dumps({"phone": "13900000000", "nonce": "x"}, key="attacker-key",
                                salt="kameng.simulators.onetap.token"),  # the right salt, the wrong key
    lambda token: "not-a-token",
    lambda token: " ",
])
def test_a_forged_token_is_refused(client: Client, forge: object) -> None:
    token = forge(_carrier_token(client))  # type: ignore[operator]

    error = _refusal(token)

    assert (error.code, error.status_code) in {("onetap_token_invalid", 400)}
    assert User.objects.count() == 0


def test_a_token_for_a_malformed_number_is_refused() -> None:
    error = _refusal(simulated_onetap_token(phone="12345"))

    assert (error.code, error.status_code) == ("invalid_phone", 400)


def test_without_the_simulators_the_simulated_carrier_vouches_for_nobody(client: Client) -> None:
    token = _carrier_token(client)

    with override_settings(KAMENG_SIMULATORS_ENABLED=False):
        error = _refusal(token)

    assert (error.code, error.status_code) == ("onetap_disabled", 400)


@override_settings(KAMENG_ONETAP_PER_ADDRESS_PER_HOUR=2)
def test_one_tap_exchanges_are_limited_per_address() -> None:
    for _ in range(2):
        with pytest.raises(ApplicationError):
            phone_login_with_onetap(token="forged", address="198.51.100.7")

    with pytest.raises(ApplicationError) as refused:
        phone_login_with_onetap(token=simulated_onetap_token(phone=PHONE), address="198.51.100.7")

    assert (refused.value.code, refused.value.status_code) == ("too_many_onetap", 429)
    assert refused.value.extra["retry_after"] > 3500


def test_the_carrier_page_sends_back_only_to_this_site(client: Client) -> None:
    response = client.post(reverse("simulators:onetap"), {"phone": PHONE, "return": "https://evil.example/",
                                                          "login": "1"})

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?tab=onetap&onetap_token=")


def test_the_carrier_page_refuses_a_malformed_number(client: Client) -> None:
    response = client.post(reverse("simulators:onetap"), {"phone": "1234", "login": "1"})

    assert response.status_code == 400
    assert "请输入 11 位中国大陆手机号" in response.content.decode()


def test_the_token_does_not_show_the_number(client: Client) -> None:
    token = _carrier_token(client, phone="13912345678")
    payload = token.split(":")[0]

    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert b"13912345678" not in decoded
    assert "13912345678" not in token
    assert phone_login_with_onetap(token=token).user.phone == "13912345678"
