"""What the Open API v1's cheaper request path keeps exactly: the key held per process is refused within
KEY_CACHE_SECONDS of a revoke made elsewhere, a nonce is refused across processes, the last use is written at most
once a minute whatever the number of processes, the answers carry the same headers past the short middleware
path (and no cookie), a known sold-out SKU is answered with one query and no risk check, and a 409 or 402 is not
logged as a warning while a 401 still is."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kameng.inventory.services import card_keys_sold_out_note
from kameng.ledger import services as ledger_services
from kameng.ledger.selectors import wallet_balance
from kameng.membership.pricing import membership_caches_clear
from kameng.resellers import apikeys, nonces
from kameng.resellers.apikeys import KEY_CACHE_SECONDS, api_key_for_request, api_keys_forget
from kameng.resellers.models import ApiKey
from kameng.resellers.pricing import reseller_caches_clear
from tests.clock_support import MonotonicClock, monotonic_clock_install
from tests.factories import SkuFactory, stock_sku
from tests.membership.support import levels_install, member_at
from tests.resellers.openapi_support import BASE, call, reseller_with_key

pytestmark = pytest.mark.django_db

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Language": "zh-hans",
    "Vary": "Cookie",
}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> MonotonicClock:
    return monotonic_clock_install(monkeypatch, apikeys)


def test_a_key_revoked_in_another_process_is_refused_within_the_bound(client: Client, clock: MonotonicClock) -> None:
    holder = reseller_with_key()
    assert call(client, holder, "GET", "/balance").status_code == 200
    # Revoked by another process: this one's held row is not forgotten, only outlived.
    ApiKey.objects.filter(pk=holder.key.pk).update(revoked_at=timezone.now())

    clock.now += KEY_CACHE_SECONDS - 0.5
    within = call(client, holder, "GET", "/balance")
    clock.now += 1.0
    after = call(client, holder, "GET", "/balance")

    assert within.status_code == 200
    assert (after.status_code, after.json()["code"]) == (401, "invalid_key")


def test_a_key_revoked_or_its_reseller_suspended_is_seen_in_one_query_after_the_bound(clock: MonotonicClock) -> None:
    holder = reseller_with_key()
    first = api_key_for_request(key_id=holder.key.key_id)
    holder.reseller.status = "suspended"
    holder.reseller.save(update_fields=["status"])
    clock.now += KEY_CACHE_SECONDS + 0.1

    with CaptureQueriesContext(connection) as queries:
        again = api_key_for_request(key_id=holder.key.key_id)

    assert first is not None
    assert again is not None
    assert (first.reseller_is_active, first.secret) == (True, holder.secret)
    assert (again.reseller_is_active, again.secret) == (False, holder.secret)
    assert len(queries) == 1


def test_an_unknown_key_is_none_and_not_held() -> None:
    assert api_key_for_request(key_id="kk_nosuchkey") is None
    assert "kk_nosuchkey" not in apikeys._keys_held


@pytest.mark.skipif("Redis" not in settings.CACHES["default"]["BACKEND"], reason="the nonce store is Redis")
def test_a_nonce_used_through_one_process_is_refused_through_another(monkeypatch: pytest.MonkeyPatch) -> None:
    holder = reseller_with_key()
    # Another process: its own client and connections to the same Redis, the same key prefix.
    other_process = caches.create_connection("default")

    assert nonces.nonce_store() == "cache"
    assert nonces.nonce_remember(api_key_pk=holder.key.pk, nonce="n" * 20)
    monkeypatch.setattr(nonces, "cache", other_process)
    assert not nonces.nonce_remember(api_key_pk=holder.key.pk, nonce="n" * 20)
    assert nonces.nonce_remember(api_key_pk=holder.key.pk, nonce="m" * 20)


def test_the_last_use_is_written_once_a_minute_whatever_the_processes(clock: MonotonicClock) -> None:
    holder = reseller_with_key()
    start = timezone.now()

    apikeys.api_key_touch(api_key_pk=holder.key.pk, now=start)
    api_keys_forget()  # another process: nothing remembered, it asks the row
    apikeys.api_key_touch(api_key_pk=holder.key.pk, now=start + timedelta(seconds=30))
    written_once = ApiKey.objects.get(pk=holder.key.pk).last_used_at
    api_keys_forget()
    apikeys.api_key_touch(api_key_pk=holder.key.pk, now=start + timedelta(seconds=61))

    assert written_once == start
    assert ApiKey.objects.get(pk=holder.key.pk).last_used_at == start + timedelta(seconds=61)


@pytest.mark.skipif("Redis" not in settings.CACHES["default"]["BACKEND"], reason="the notes are kept in Redis")
def test_on_redis_a_request_notes_its_keys_use_and_the_flush_writes_it(client: Client) -> None:
    holder, other = reseller_with_key(), reseller_with_key()
    apikeys.api_keys_last_used_flush()  # notes left by other tests of this process
    before = timezone.now().replace(microsecond=0)

    with CaptureQueriesContext(connection) as queries:
        answers = [call(client, holder, "GET", "/balance"), call(client, holder, "GET", "/balance"),
                   call(client, other, "GET", "/balance", secret="wrong")]
    unwritten = ApiKey.objects.get(pk=holder.key.pk).last_used_at
    flushed = apikeys.api_keys_last_used_flush()
    written = ApiKey.objects.get(pk=holder.key.pk).last_used_at

    assert [answer.status_code for answer in answers] == [200, 200, 401]
    assert not [query for query in queries if query["sql"].startswith("UPDATE")]  # no statement per use
    assert unwritten is None
    assert flushed == 1  # the refused request (bad signature) noted nothing
    assert written is not None
    assert before <= written <= timezone.now()
    assert ApiKey.objects.get(pk=other.key.pk).last_used_at is None
    assert apikeys.api_keys_last_used_flush() == 0  # the notes were taken


@pytest.mark.skipif("Redis" not in settings.CACHES["default"]["BACKEND"], reason="the notes are kept in Redis")
def test_a_flushed_use_never_moves_the_last_use_back(client: Client) -> None:
    holder, fresh = reseller_with_key(), reseller_with_key()
    apikeys.api_keys_last_used_flush()  # notes left by other tests of this process
    later = timezone.now() + timedelta(hours=1)
    ApiKey.objects.filter(pk=holder.key.pk).update(last_used_at=later)  # written by a newer note meanwhile

    assert call(client, holder, "GET", "/balance").status_code == 200
    assert call(client, fresh, "GET", "/balance").status_code == 200
    flushed = apikeys.api_keys_last_used_flush()

    assert flushed == 2
    assert ApiKey.objects.get(pk=holder.key.pk).last_used_at == later
    assert ApiKey.objects.get(pk=fresh.key.pk).last_used_at is not None


@pytest.mark.skipif("Redis" not in settings.CACHES["default"]["BACKEND"], reason="the notes are kept in Redis")
def test_notes_a_failed_flush_took_are_written_by_the_next(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    holder = reseller_with_key()
    apikeys.api_keys_last_used_flush()
    assert call(client, holder, "GET", "/balance").status_code == 200
    monkeypatch.setattr(apikeys, "_FLUSH_SQL", "SELECT 1 / 0, %s, %s")  # the write fails at the server
    monkeypatch.setattr(apikeys.ApiKey.objects, "filter", lambda *args, **kwargs: 1 / 0)  # and on the ORM backends

    with pytest.raises(Exception, match="division by zero"):
        apikeys.api_keys_last_used_flush()
    monkeypatch.undo()
    flushed = apikeys.api_keys_last_used_flush()

    assert flushed == 1
    assert ApiKey.objects.get(pk=holder.key.pk).last_used_at is not None


@pytest.mark.skipif("Redis" not in settings.CACHES["default"]["BACKEND"], reason="the rate limit's script on Redis")
def test_on_redis_with_the_rate_limit_off_a_use_is_still_written(client: Client, settings: Any) -> None:
    settings.KAMENG_OPENAPI_RATE_PER_MINUTE = 0  # no counter, so no script to note it in: the UPDATE's way
    holder = reseller_with_key()

    assert call(client, holder, "GET", "/balance").status_code == 200

    assert ApiKey.objects.get(pk=holder.key.pk).last_used_at is not None


def test_beat_writes_the_noted_uses_every_minute() -> None:
    from kameng.celery import app
    from kameng.resellers import tasks

    entry = app.conf.beat_schedule["resellers-flush-api-key-uses"]

    assert (entry["task"], entry["schedule"]) == ("kameng.resellers.tasks.flush_api_key_uses", 60.0)
    assert tasks.flush_api_key_uses.name == entry["task"]
    assert tasks.flush_api_key_uses.run() == 0  # nothing noted: nothing written


def test_answers_keep_their_headers_and_set_no_cookie(client: Client) -> None:
    holder = reseller_with_key()

    answers = [call(client, holder, "GET", "/balance"), call(client, holder, "GET", "/balance", secret="wrong"),
               call(client, holder, "POST", "/orders", {"request_no": "H-1", "sku_id": 99999, "quantity": 1})]

    assert [answer.status_code for answer in answers] == [200, 401, 404]
    for answer in answers:
        assert {name: answer.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
        assert answer.headers["Permissions-Policy"] == settings.KAMENG_PERMISSIONS_POLICY
        assert int(answer.headers["Content-Length"]) == len(answer.content)
        assert not answer.cookies
    assert answers[0].headers["Cache-Control"] == "no-store, private"


def test_the_docs_page_still_gets_the_sites_policy(client: Client) -> None:
    page = client.get(BASE + "/docs")

    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] != SECURITY_HEADERS["Content-Security-Policy"]


def test_a_form_body_in_another_charset_is_400(client: Client) -> None:
    holder = reseller_with_key()

    answer = client.post(BASE + "/orders", data="a=1", content_type="application/x-www-form-urlencoded; charset=gbk",
                         HTTP_X_KAMENG_KEY=holder.key.key_id)

    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_charset")


def _no_risk(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_kwargs: Any) -> None:
        raise AssertionError("risk control ran for a SKU known to be sold out")

    monkeypatch.setattr("kameng.purchases.services.purchase_risk_check", refuse)


def test_a_known_sold_out_sku_is_409_with_one_query_and_no_risk_check(client: Client,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    holder = reseller_with_key()
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 1)
    card_keys_sold_out_note(sku_id=sku.pk)
    call(client, holder, "GET", "/balance")  # the key is held and touched: what is left is the order's own
    _no_risk(monkeypatch)

    with CaptureQueriesContext(connection) as queries:
        answer = call(client, holder, "POST", "/orders", {"request_no": "S-1", "sku_id": sku.pk, "quantity": 1})

    assert (answer.status_code, answer.json()["code"]) == (409, "sold_out")
    assert len(queries) == 1, [query["sql"] for query in queries]


def test_a_replay_of_an_order_is_answered_while_its_sku_is_known_sold_out(client: Client) -> None:
    holder = reseller_with_key()
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 1)
    body = {"request_no": "W-1", "sku_id": sku.pk, "quantity": 1}
    won = call(client, holder, "POST", "/orders", body)
    card_keys_sold_out_note(sku_id=sku.pk)

    again = call(client, holder, "POST", "/orders", body)

    assert (won.status_code, again.status_code) == (201, 200)
    assert again.json() == won.json()


def test_sold_out_and_insufficient_balance_are_not_logged_but_a_bad_signature_is(
        client: Client, caplog: pytest.LogCaptureFixture) -> None:
    holder, poor = reseller_with_key(), reseller_with_key(funds="1.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 1)
    card_keys_sold_out_note(sku_id=sku.pk)
    other = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(other, 1)

    with caplog.at_level(logging.INFO, logger="django.request"):
        sold_out = call(client, holder, "POST", "/orders", {"request_no": "L-1", "sku_id": sku.pk, "quantity": 1})
        short = call(client, poor, "POST", "/orders", {"request_no": "P-1", "sku_id": other.pk, "quantity": 1})
        forged = call(client, holder, "GET", "/balance", secret="wrong")

    assert [sold_out.status_code, short.status_code, forged.status_code] == [409, 402, 401]
    logged = [(record.levelname, record.status_code) for record in caplog.records  # type: ignore[attr-defined]
              if record.name == "django.request"]
    assert logged == [("WARNING", 401)]


def test_a_buyers_first_order_reads_its_wallet_level_and_tier_with_the_key(client: Client) -> None:
    """A key read cold brings its buyer's wallet account, stored member level and reseller tier in the same query
    (every order of a flash sale is such a first one): the checkout asks for none of them again, and prices and pays
    with what was read."""
    levels_install()
    holder = reseller_with_key(funds="100.00")
    member_at(holder.reseller.user, "5000.00", 4)  # VIP4: 95折
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 2)
    api_keys_forget()  # the key, its buyer's wallet id and level are all new to this process
    ledger_services.forget_cached_account_ids()
    membership_caches_clear()
    reseller_caches_clear()

    with CaptureQueriesContext(connection) as queries:
        answer = call(client, holder, "POST", "/orders", {"request_no": "F-1", "sku_id": sku.pk, "quantity": 1})

    assert answer.status_code == 201, answer.content
    assert answer.json()["amount"] == "9.50"
    statements = [" ".join(query["sql"].split()) for query in queries]
    key_reads = [sql for sql in statements if "resellers_apikey" in sql and "k.key_id" in sql]
    assert len(key_reads) == 1
    assert "level_rank" in key_reads[0]
    assert " w.id" in key_reads[0]
    assert not [sql for sql in statements if "WHERE owner_id = " in sql]  # no wallet look-up
    assert not [sql for sql in statements if sql.startswith("SELECT level_rank FROM")]  # no level look-up
    assert not [sql for sql in statements if 'FROM "resellers_reseller"' in sql]  # no tier look-up
    assert wallet_balance(user_id=holder.reseller.user_id) == Decimal("90.50")
