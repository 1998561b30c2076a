"""The gateway simulators exist only where they are enabled: the tests and the demo have them, a production
configuration (KAMENG_SIMULATORS_ENABLED off) has no simulator app, table, admin page or URL.

Settings are read once per process, so the production-like configuration runs in a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.urls import resolve

ROOT = Path(__file__).resolve().parent.parent.parent

_INSPECT = """
import json
import django
from django.apps import apps
from django.contrib import admin
from django.urls import Resolver404, resolve

django.setup()
from kameng import urls  # noqa: E402 - the URL map as the server builds it

def resolves(path):
    try:
        resolve(path)
    except Resolver404:
        return False
    return True

print(json.dumps({
    "apps": sorted(config.name for config in apps.get_app_configs()),
    "admin_models": sorted(model._meta.label for model in admin.site._registry),
    "sim_urls": [path for path in ("/sim/epay/submit.php", "/sim/alipay/gateway.do", "/sim/epay-v2/api/pay/create")
                 if resolves(path)],
    "home_resolves": resolves("/"),
}))
"""


def _production_env(tmp_path: Path) -> dict[str, str]:
    """A production-like environment: base settings, DEBUG off, simulators off, nothing from .env."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("KAMENG_", "DJANGO_", "DEBUG"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "kameng.settings.base",
        "KAMENG_IGNORE_DOTENV": "1",
        "KAMENG_SIMULATORS_ENABLED": "0",
        "KAMENG_VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "production-like-test-key-" + "y" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'production.sqlite3'}",
        "PYTHONPATH": str(ROOT),
    })
    env.pop("REDIS_URL", None)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_the_tests_run_with_the_simulators_installed_and_mounted() -> None:
    assert settings.KAMENG_SIMULATORS_ENABLED is True
    assert apps.is_installed("kameng.simulators")
    assert apps.is_installed("kameng.simulators.alipay")
    assert resolve("/sim/epay/submit.php").url_name == "epay_submit"


def test_a_production_configuration_has_no_simulator_app_and_no_sim_url(tmp_path: Path) -> None:
    result = _run(["-c", _INSPECT], _production_env(tmp_path))

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert [name for name in seen["apps"] if "simulators" in name] == []
    assert "kameng.payments" in seen["apps"]
    assert [label for label in seen["admin_models"] if label.startswith("sim")] == []
    assert "payments.PaymentChannel" in seen["admin_models"]
    assert seen["sim_urls"] == []
    assert seen["home_resolves"] is True


def test_checks_and_migrations_pass_without_the_simulators(tmp_path: Path) -> None:
    env = _production_env(tmp_path)

    check = _run(["manage.py", "check"], env)
    migrations = _run(["manage.py", "makemigrations", "--check", "--dry-run"], env)

    assert check.returncode == 0, check.stderr
    assert "no issues" in check.stdout
    assert migrations.returncode == 0, migrations.stdout + migrations.stderr
    assert migrations.stdout.strip() == "No changes detected"


def test_seed_demo_refuses_to_run_without_the_simulators(tmp_path: Path) -> None:
    result = _run(["manage.py", "seed_demo"], _production_env(tmp_path))

    assert result.returncode == 1
    assert "模拟器没有启用：请设置 KAMENG_SIMULATORS_ENABLED=1" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "production.sqlite3").exists()  # refused before writing anything

