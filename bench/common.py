"""What the benchmarks share to set a run up and take it down — not what they measure: the production-like
environment of a run (nothing read from .env, fresh keys), its throwaway PostgreSQL database, migrating it, Django
in this process, and stopping a process group a benchmark started.

Imported by the scripts in this folder (run as `.venv/bin/python bench/<name>.py`, which puts this folder on the
import path).
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")


def bench_environment(*, pg_url: str, database: str, **settings: str) -> dict[str, str]:
    """This process's environment without any DJANGO_/KAMENG_ setting, then production settings for this run only:
    DEBUG off, nothing read from .env, a fresh secret key and encryption keys, the run's database, quiet logs, the
    simulators off; `settings` adds or overrides (a var dir, eager tasks, Redis…)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "KAMENG_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "kameng.settings.base",
        "KAMENG_IGNORE_DOTENV": "1",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "KAMENG_ENCRYPTION_KEYS": "bench1:" + base64.b64encode(os.urandom(32)).decode(),
        "KAMENG_BLIND_INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
        "DATABASE_URL": f"{pg_url.rstrip('/')}/{database}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "KAMENG_SIMULATORS_ENABLED": "0",
        "PYTHONPATH": str(ROOT),
        **settings,
    })
    return env


def admin_connect(pg_url: str) -> Any:
    """An autocommit connection to the server's `postgres` database (to create and drop the run's)."""
    import psycopg

    return psycopg.connect(f"{pg_url.rstrip('/')}/postgres", autocommit=True)


def database_create(pg_url: str, name: str, *, template: str | None = None) -> None:
    """A fresh, empty database `name` (dropped first if an earlier run left it), or a copy of `template`."""
    with admin_connect(pg_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def database_drop(pg_url: str, name: str) -> None:
    with admin_connect(pg_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(env: dict[str, str], *, timeout: int = 300) -> None:
    # System checks are the test suite's job; here they would only add ways for an unrelated admin check (some
    # query the database) to stop a benchmark of a throwaway database.
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0", "--skip-checks"], cwd=ROOT, env=env, check=True,
                   timeout=timeout)


def django_start(env: dict[str, str]) -> None:
    """Django in this process, with the run's environment (the seeding and timed work use the real services)."""
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def process_stop(process: subprocess.Popen[bytes] | None) -> None:
    """Stop the process group of a process this benchmark started (a server, a simulator, a worker)."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
