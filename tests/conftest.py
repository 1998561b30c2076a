"""Shared fixtures. Every test that touches the database ends with the ledger invariants checked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import translation
from hypothesis import settings as hypothesis_settings

from kameng.catalog.models import game_goods_held_forget, skus_for_sale_held_forget
from kameng.inventory import services as inventory_services
from kameng.ledger.selectors import ledger_problems
from kameng.ledger.services import forget_cached_account_ids
from kameng.membership.pricing import membership_caches_clear
from kameng.orders.checkout import order_ids_forget
from kameng.resellers.apikeys import api_keys_forget
from kameng.resellers.pricing import reseller_caches_clear
from kameng.risk.rules import rules_snapshot_forget
from tests.factories import staff_session_verify
from tests.payments.refund_support import FakeRefundGateway, fake_refund_gateway_install

# No per-example deadline: the properties are about values, and on a loaded CI machine one slow example (a cold
# import, a busy core) would fail a test that found nothing wrong.
hypothesis_settings.register_profile("kameng", deadline=None)
hypothesis_settings.load_profile("kameng")


@pytest.fixture(autouse=True)
def _fresh_process_caches() -> Iterator[None]:
    forget_cached_account_ids()
    inventory_services._bounds.clear()
    inventory_services.card_keys_sold_out_forget()
    membership_caches_clear()
    reseller_caches_clear()
    rules_snapshot_forget()
    api_keys_forget()
    game_goods_held_forget()
    skus_for_sale_held_forget()
    order_ids_forget()
    yield
    forget_cached_account_ids()
    inventory_services._bounds.clear()
    inventory_services.card_keys_sold_out_forget()
    membership_caches_clear()
    reseller_caches_clear()
    rules_snapshot_forget()
    api_keys_forget()
    game_goods_held_forget()
    skus_for_sale_held_forget()
    order_ids_forget()


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the shop's default language: a test client request activates the visitor's language in
    this thread and leaves it active, so a test that switched to English would make later tests speak English."""
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _ledger_invariants_hold(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    uses_db = any(name in request.fixturenames for name in ("db", "transactional_db", "django_db_setup"))
    marker = request.node.get_closest_marker("django_db")
    if uses_db or marker is not None:
        problems = ledger_problems()
        assert not problems, f"ledger invariants violated after test: {problems}"


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Empty this process's cache keys only.

    `cache.clear()` on Redis is FLUSHDB: with xdist workers (or another test run) sharing the Redis database it
    would wipe their keys in the middle of their tests. Each process has its own key prefix (settings.test).
    """
    backend = getattr(cache, "_cache", None)
    if backend is None or not hasattr(backend, "get_client"):
        cache.clear()
        return
    client = backend.get_client(write=True)
    keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def refund_gateway(monkeypatch: pytest.MonkeyPatch) -> FakeRefundGateway:
    """Refunds to the original channel go to a fake gateway that answers what the test queues."""
    return fake_refund_gateway_install(monkeypatch)


@pytest.fixture(autouse=True)
def _staff_sessions_verified(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A staff account logged in with `Client.force_login` (pytest-django's admin_client included) has passed the
    admin's 2FA (kameng/accounts/staff_middleware.py) with a fresh step-up, so the admin tests test the admin.
    Tests of the 2FA itself opt out with @pytest.mark.staff_otp_enforced and log in as a browser would."""
    if request.node.get_closest_marker("staff_otp_enforced"):
        return
    force_login = Client.force_login

    def force_login_verified(self: Client, user: Any, backend: str | None = None) -> None:
        force_login(self, user, backend)
        if getattr(user, "is_staff", False):
            staff_session_verify(self, user)

    monkeypatch.setattr(Client, "force_login", force_login_verified)
