"""`manage.py healthcheck` and the demo launcher's `.env` handling (the launcher itself is tried by hand)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from kameng.core.crypto import parse_keyring
from kameng.demo import SUPPLIER_DEMO_KNOBS, env_file_ensure, supplier_config_write


@pytest.mark.django_db
def test_healthcheck_passes_when_database_cache_and_broker_answer() -> None:
    out = StringIO()
    call_command("healthcheck", stdout=out)

    lines = out.getvalue().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["database", "cache", "broker"]
    assert all(": ok" in line for line in lines)


@pytest.mark.django_db
def test_healthcheck_fails_on_an_unreachable_broker(settings: pytest.FixtureRequest) -> None:
    from kameng.celery import app

    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        out = StringIO()
        with pytest.raises(CommandError, match="unhealthy: broker"):
            call_command("healthcheck", "--timeout", "0.5", stdout=out)
    finally:
        app.conf.broker_url = previous
    assert "broker: FAIL" in out.getvalue()


def test_demo_env_file_is_written_once_with_working_keys(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"

    added = env_file_ensure(env_file, site_url="http://127.0.0.1:8000")
    first = env_file.read_text()
    again = env_file_ensure(env_file, site_url="http://127.0.0.1:9999")

    assert added == ["DEBUG", "SECRET_KEY", "KAMENG_ENCRYPTION_KEYS", "KAMENG_BLIND_INDEX_KEY", "SITE_URL",
                     "KAMENG_SIMULATORS_ENABLED"]
    assert again == []
    assert env_file.read_text() == first
    assert env_file.stat().st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in first.splitlines() if line and not line.startswith("#"))
    assert values["KAMENG_ENCRYPTION_KEYS"].startswith("dev1:")
    assert parse_keyring(values["KAMENG_ENCRYPTION_KEYS"], values["KAMENG_BLIND_INDEX_KEY"]).active_id == "dev1"
    assert values["SITE_URL"] == "http://127.0.0.1:8000"
    assert values["DEBUG"] == "1"
    assert values["KAMENG_SIMULATORS_ENABLED"] == "1"


def test_demo_env_file_keeps_existing_values_and_adds_only_missing_ones(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=mine\nKAMENG_ENCRYPTION_KEYS=kept:AAAA")

    added = env_file_ensure(env_file, site_url="http://127.0.0.1:8000")

    text = env_file.read_text()
    assert "SECRET_KEY=mine\n" in text
    assert "KAMENG_ENCRYPTION_KEYS=kept:AAAA\n" in text
    assert "SECRET_KEY" not in added
    assert "KAMENG_ENCRYPTION_KEYS" not in added
    assert "KAMENG_BLIND_INDEX_KEY" in added


def test_demo_writes_the_supplier_simulators_merchants_for_the_owner_only(tmp_path: Path) -> None:
    merchants = [{"app_key": "demo-xinghe", "app_secret": "s3cret", "notify_url": "http://x/suppliers/callback/1/"}]
    path = tmp_path / "supplier-simulator.json"

    supplier_config_write(path, {"supplier_simulator": {"url": "http://127.0.0.1:8001", "merchants": merchants}})

    assert json.loads(path.read_text(encoding="utf-8")) == {"merchants": merchants, "knobs": SUPPLIER_DEMO_KNOBS}
    assert path.stat().st_mode & 0o777 == 0o600
