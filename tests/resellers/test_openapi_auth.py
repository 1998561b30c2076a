"""The Open API v1's signed requests: every refusal is a JSON {"code", "message"} with its status, and nothing
about the request is done before the signature holds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from kameng.core.openapi_signing import body_sha256, openapi_signature, string_to_sign
from kameng.resellers.apikeys import api_key_revoke
from kameng.resellers.models import ApiKey, ApiNonce, ResellerStatus
from kameng.resellers.nonces import nonces_purge
from tests.resellers.openapi_support import BASE, call, headers_for, reseller_with_key

pytestmark = pytest.mark.django_db
NOW = 1_800_000_000


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("kameng.openapi.auth.time.time", lambda: float(NOW))
    return NOW


def _error(response: object) -> tuple[int, str]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"code", "message"}, body
    assert body["message"]
    return response.status_code, body["code"]  # type: ignore[attr-defined]


def test_the_string_to_sign_is_the_contracts() -> None:
    text = string_to_sign(method="post", path_with_query="/openapi/v1/orders?x=1", timestamp="1700000000",
                          nonce="n" * 16, body=b'{"a":1}')

    assert text == ("POST\n/openapi/v1/orders?x=1\n1700000000\n" + "n" * 16 + "\n"
                    + "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862")
    assert body_sha256(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    upper = openapi_signature(secret="s", method="GET", path_with_query="/p", timestamp="1", nonce="n" * 16, body=b"")
    lower = openapi_signature(secret="s", method="get", path_with_query="/p", timestamp="1", nonce="n" * 16, body=b"")
    assert upper == lower


def test_a_signed_request_is_answered(client: Client) -> None:
    holder = reseller_with_key(funds="12.34")

    response = call(client, holder, "GET", "/balance")

    assert response.status_code == 200
    assert response.json() == {"balance": "12.34"}


def test_a_wrong_secret_or_a_changed_body_is_401(client: Client) -> None:
    holder = reseller_with_key()
    path = BASE + "/orders"
    body = b'{"request_no": "A1", "sku_id": 1, "quantity": 1}'
    meta = headers_for(holder, "POST", path, body)

    wrong_secret = call(client, holder, "GET", "/balance", secret="not-the-secret")
    changed_body = client.generic("POST", path, data=body.replace(b"1}", b"9}"), content_type="application/json",
                                  **meta)

    assert _error(wrong_secret) == (401, "signature_invalid")
    assert _error(changed_body) == (401, "signature_invalid")


def test_the_query_string_is_signed(client: Client) -> None:
    holder = reseller_with_key()
    meta = headers_for(holder, "GET", BASE + "/orders?request_no=A1")

    response = client.get(BASE + "/orders?request_no=B2", **meta)

    assert _error(response) == (401, "signature_invalid")


@pytest.mark.parametrize(("offset", "status"), [(0, 200), (300, 200), (-300, 200), (301, 401), (-301, 401)])
def test_a_timestamp_more_than_300_seconds_away_is_401(client: Client, frozen_clock: int, offset: int,
                                                       status: int) -> None:
    holder = reseller_with_key()

    response = call(client, holder, "GET", "/balance", timestamp=frozen_clock + offset)

    assert response.status_code == status
    if status == 401:
        assert _error(response) == (401, "timestamp_expired")


@pytest.mark.parametrize("timestamp", ["abc", "-5", "1.5e9", "1" * 13])
def test_a_timestamp_that_is_not_unix_seconds_is_401(client: Client, timestamp: str) -> None:
    holder = reseller_with_key()
    meta = headers_for(holder, "GET", BASE + "/balance")
    meta["HTTP_X_KAMENG_TIMESTAMP"] = timestamp

    assert _error(client.get(BASE + "/balance", **meta)) == (401, "timestamp_invalid")


def test_a_nonce_seen_before_is_401_for_that_key_only(client: Client) -> None:
    holder, other = reseller_with_key(), reseller_with_key()
    nonce = "replay-nonce-0001"

    first = call(client, holder, "GET", "/balance", nonce=nonce)
    replay = call(client, holder, "GET", "/balance", nonce=nonce)
    other_key = call(client, other, "GET", "/balance", nonce=nonce)

    assert first.status_code == 200
    assert _error(replay) == (401, "nonce_reused")
    assert other_key.status_code == 200


@pytest.mark.parametrize(("nonce", "status"), [("a" * 15, 401), ("a" * 16, 200), ("b" * 64, 200), ("c" * 65, 401),
                                               ("with space nonce!", 401)])
def test_a_nonce_has_16_to_64_visible_characters(client: Client, nonce: str, status: int) -> None:
    holder = reseller_with_key()

    response = call(client, holder, "GET", "/balance", nonce=nonce)

    assert response.status_code == status
    if status == 401:
        assert _error(response) == (401, "nonce_invalid")


@override_settings(KAMENG_OPENAPI_NONCE_STORE="database")
def test_nonces_kept_in_the_database_refuse_a_replay_and_are_purged(client: Client) -> None:
    holder = reseller_with_key()
    nonce = "database-nonce-01"

    first = call(client, holder, "GET", "/balance", nonce=nonce)
    replay = call(client, holder, "GET", "/balance", nonce=nonce)
    ApiNonce.objects.create(api_key=holder.key, nonce="an-old-nonce-0001",
                            created_at=timezone.now() - timedelta(minutes=16))

    assert first.status_code == 200
    assert _error(replay) == (401, "nonce_reused")
    assert nonces_purge() == 1
    assert list(ApiNonce.objects.values_list("nonce", flat=True)) == [nonce]


def test_an_unsigned_request_changes_no_nonce(client: Client) -> None:
    """A bad signature is refused before the nonce is remembered: nobody without the secret uses up nonces."""
    holder = reseller_with_key()
    nonce = "guessed-nonce-001"

    forged = call(client, holder, "GET", "/balance", nonce=nonce, secret="wrong")
    genuine = call(client, holder, "GET", "/balance", nonce=nonce)

    assert _error(forged) == (401, "signature_invalid")
    assert genuine.status_code == 200


def test_missing_headers_unknown_and_revoked_keys_are_401(client: Client) -> None:
    holder = reseller_with_key()
    meta = headers_for(holder, "GET", BASE + "/balance")
    unknown = dict(meta, HTTP_X_KAMENG_KEY="kk_doesnotexist")
    without_signature = {name: value for name, value in meta.items() if name != "HTTP_X_KAMENG_SIGNATURE"}

    assert _error(client.get(BASE + "/balance")) == (401, "signature_missing")
    assert _error(client.get(BASE + "/balance", **without_signature)) == (401, "signature_missing")
    assert _error(client.get(BASE + "/balance", **unknown)) == (401, "invalid_key")
    api_key_revoke(reseller_id=holder.reseller.pk, api_key_pk=holder.key.pk)
    assert _error(call(client, holder, "GET", "/balance")) == (401, "invalid_key")


@pytest.mark.parametrize("status", [ResellerStatus.PENDING, ResellerStatus.SUSPENDED, ResellerStatus.REJECTED])
def test_a_reseller_not_active_is_403(client: Client, status: str) -> None:
    holder = reseller_with_key(status=status)

    assert _error(call(client, holder, "GET", "/balance")) == (403, "reseller_inactive")


def test_the_ip_allow_list_admits_only_its_addresses(client: Client) -> None:
    holder = reseller_with_key(ip_allowlist="10.0.0.0/8\n2001:db8::1")

    inside = call(client, holder, "GET", "/balance", remote_addr="10.1.2.3")
    ipv6 = call(client, holder, "GET", "/balance", remote_addr="2001:db8::1")
    outside = call(client, holder, "GET", "/balance", remote_addr="192.0.2.7")

    assert (inside.status_code, ipv6.status_code) == (200, 200)
    assert _error(outside) == (403, "ip_not_allowed")
    assert "192.0.2.7" in outside.json()["message"]


@override_settings(KAMENG_OPENAPI_RATE_PER_MINUTE=2)
def test_past_the_rate_limit_a_key_gets_429_with_retry_after(client: Client) -> None:
    holder, other = reseller_with_key(), reseller_with_key()

    answers = [call(client, holder, "GET", "/balance") for _ in range(3)]
    other_key = call(client, other, "GET", "/balance")

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert _error(answers[2]) == (429, "rate_limited")
    assert 1 <= int(answers[2]["Retry-After"]) <= 60
    assert other_key.status_code == 200


@override_settings(KAMENG_OPENAPI_RATE_PER_MINUTE=2)
def test_a_replayed_nonce_and_a_refused_address_do_not_count_against_the_rate(client: Client) -> None:
    holder = reseller_with_key(ip_allowlist="10.0.0.0/8")

    first = call(client, holder, "GET", "/balance", nonce="rate-nonce-00001", remote_addr="10.0.0.1")
    replay = call(client, holder, "GET", "/balance", nonce="rate-nonce-00001", remote_addr="10.0.0.1")
    outside = call(client, holder, "GET", "/balance", remote_addr="192.0.2.7")
    second = call(client, holder, "GET", "/balance", remote_addr="10.0.0.1")
    third = call(client, holder, "GET", "/balance", nonce="rate-nonce-00003", remote_addr="10.0.0.1")
    third_again = call(client, holder, "GET", "/balance", nonce="rate-nonce-00003", remote_addr="10.0.0.1")

    assert (first.status_code, second.status_code) == (200, 200)
    assert _error(replay) == (401, "nonce_reused")
    assert _error(outside) == (403, "ip_not_allowed")
    assert _error(third) == (429, "rate_limited")
    assert _error(third_again) == (401, "nonce_reused")  # a refused request's nonce is spent all the same


@override_settings(KAMENG_OPENAPI_RATE_PER_MINUTE=1, KAMENG_OPENAPI_NONCE_STORE="database")
def test_nonces_in_the_database_count_the_rate_in_the_cache(client: Client) -> None:
    holder = reseller_with_key()

    first = call(client, holder, "GET", "/balance", nonce="db-rate-nonce-001")
    replay = call(client, holder, "GET", "/balance", nonce="db-rate-nonce-001")
    second = call(client, holder, "GET", "/balance")

    assert first.status_code == 200
    assert _error(replay) == (401, "nonce_reused")
    assert _error(second) == (429, "rate_limited")
    assert 1 <= int(second["Retry-After"]) <= 60
    assert ApiNonce.objects.count() == 2


@override_settings(KAMENG_OPENAPI_NONCE_STORE="database")  # the UPDATE's way (on Redis: a note, test_openapi_fast_path)
def test_last_used_is_written_at_most_once_a_minute(client: Client) -> None:
    holder = reseller_with_key()

    call(client, holder, "GET", "/balance")
    first = ApiKey.objects.get(pk=holder.key.pk).last_used_at
    ApiKey.objects.filter(pk=holder.key.pk).update(last_used_at=None)
    call(client, holder, "GET", "/balance")

    assert first is not None
    assert ApiKey.objects.get(pk=holder.key.pk).last_used_at is None


def test_the_secret_is_stored_encrypted() -> None:
    holder = reseller_with_key()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM resellers_apikey WHERE id = %s", [holder.key.pk])
        stored = bytes(cursor.fetchone()[0])

    assert holder.secret.encode() not in stored
    assert ApiKey.objects.get(pk=holder.key.pk).secret == holder.secret
    assert len(holder.secret) >= 43  # 32 random bytes, url-safe base64

