"""What the benchmarks share to set a run up and take it down — not what they measure: the production-like
environment of a run (nothing read from .env, fresh keys), its throwaway PostgreSQL database, migrating it, Django
in this process, a Celery worker and its broker, the run's Redis keys, stopping a process group a benchmark
started, the CPU accounting (a server's process group and the database's backends), and for the benchmarks that
start the server as bench/checkout.py does (the Open API ones), their shared options and the frame of a run.

Imported by the scripts in this folder (run as `.venv/bin/python bench/<name>.py`, which puts this folder on the
import path).
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


# --- a Celery worker, its broker, the run's Redis keys --------------------------------------------------------


def worker_start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A Celery worker as in production (threads pool), in its own process group so its CPU can be counted."""
    command = [PYTHON, "-m", "celery", "-A", "kameng", "worker", "--pool", "threads", "--concurrency", "4",
               "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    time.sleep(3)
    if process.poll() is not None:
        raise RuntimeError(f"the Celery worker exited at start:\n{log.read_text()[-3000:]}")
    return process


def broker_forget(env: dict[str, str]) -> None:
    """An empty broker database: tasks left by an earlier, interrupted run would be counted in this one."""
    import redis

    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()


def redis_forget(env: dict[str, str]) -> None:
    """Delete the run's cache keys (its CACHE_KEY_PREFIX) from Redis."""
    import redis

    client = redis.Redis.from_url(env["REDIS_URL"])
    keys = list(client.scan_iter(match=f"{env['CACHE_KEY_PREFIX']}:*", count=1000))
    for offset in range(0, len(keys), 1000):
        client.delete(*keys[offset : offset + 1000])


# --- CPU accounting -------------------------------------------------------------------------------------------


def cpu_seconds(*, process_group: int, database: str) -> tuple[float, float]:
    """CPU time (user + system) used so far by the server's process group and by the PostgreSQL backends connected
    to the bench database: per order, a figure that the other load on a shared machine barely moves."""
    tick = os.sysconf("SC_CLK_TCK")
    server = postgres = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            used = (int(fields[11]) + int(fields[12])) / tick
            if int(fields[2]) == process_group:
                server += used
            elif f" {database} ".encode() in (entry / "cmdline").read_bytes().replace(b"\0", b" "):
                postgres += used
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile, or is not ours to read
    return server, postgres


def cpu_per_request(before: tuple[float, float], after: tuple[float, float], requests: int) -> tuple[float, float]:
    """Milliseconds of CPU per request of the server and of PostgreSQL between two `cpu_seconds` readings."""
    count = max(1, requests)
    return (after[0] - before[0]) / count * 1000, (after[1] - before[1]) / count * 1000


# --- the Open API benchmarks: options, seeding's last step, the frame of a run ---------------------------------


def server_arguments(parser: argparse.ArgumentParser, *, port: int, database: str) -> None:
    """The options of a benchmark that starts the server as bench/checkout.py does, with a worker beside it."""
    parser.add_argument("--server", choices=["granian", "gunicorn"], default="granian")
    parser.add_argument("--granian-workers", type=int, default=2)
    parser.add_argument("--granian-threads", type=int, default=24)
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--gunicorn-threads", type=int, default=24)
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--database", default=database)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--broker-url", default=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--no-worker", dest="worker", action="store_false")
    parser.add_argument("--keep-database", action="store_true")


SEEDED_TABLES = ("inventory_cardkey, ledger_account, accounts_user, catalog_sku, catalog_product, resellers_apikey, "
                 "resellers_reseller")


def seeded_tables_analyze() -> None:
    """VACUUM ANALYZE what the seeding wrote (the order tables are empty now and fill during the run), then close
    this process's connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {SEEDED_TABLES}")
    connection.close()


def filled_tables_analyze(pg_url: str, database: str) -> None:
    """ANALYZE the run's database after its warm-up, outside the timed part: the tables a run fills (orders, events,
    journals, Open API records…) were empty at seeding, and PostgreSQL keeps the plans it made for empty tables
    (sequential scans) on long-lived connections until autovacuum analyses them, a minute or more later — longer
    than a run. A shop that has been selling has statistics of its tables; this gives the run that state."""
    import psycopg

    with psycopg.connect(f"{pg_url.rstrip('/')}/{database}", autocommit=True) as conn:
        conn.execute("ANALYZE")


def run_framed(args: argparse.Namespace, env: dict[str, str], *, prefix: str,
               body: Callable[[Path, Callable[[], subprocess.Popen[bytes] | None]], bool]) -> int:
    """A run from its fresh database to its clean-up: create and migrate the run's database, then
    `body(workdir, start_worker)` — it seeds, serves and checks, True when every invariant held; `start_worker()`
    starts the Celery worker once the seeding is done (None with --no-worker) — and whatever happens, the worker
    stopped, this process's connections closed, the run's Redis keys deleted, the database dropped (unless
    --keep-database) and the scratch folder removed. Returns the exit status (0: every invariant held)."""
    os.environ.update(env)
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    workers: list[subprocess.Popen[bytes]] = []

    def start_worker() -> subprocess.Popen[bytes] | None:
        if not args.worker:
            return None
        broker_forget(env)
        workers.append(worker_start(env, workdir / "worker.log"))
        return workers[-1]

    ok = False
    try:
        database_create(args.pg_url, args.database)
        migrate(env)
        ok = body(workdir, start_worker)
    finally:
        for worker in workers:
            process_stop(worker)
        run_clean_up(args, env, workdir)
    return 0 if ok else 1


def run_clean_up(args: argparse.Namespace, env: dict[str, str], workdir: Path) -> None:
    """The end of every run: this process's connections closed, the run's Redis keys deleted, the database dropped
    (unless --keep-database), the scratch folder removed."""
    from django.db import connections

    connections.close_all()
    try:
        redis_forget(env)
    except Exception as error:
        print(f"  (could not clean Redis keys: {error})")
    if not args.keep_database:
        database_drop(args.pg_url, args.database)
    shutil.rmtree(workdir, ignore_errors=True)
