"""Checkout benchmark: balance-paid card-key orders over HTTP at 64 clients, beside the raw-SQL ceiling.

What one run does, all on 127.0.0.1 and bounded in time:
  1. creates a fresh PostgreSQL database (`kameng_bench`), migrates it, seeds one hot SKU with card keys (through
     the real import service: encrypted + fingerprinted), funds N buyers and opens a session for each;
  2. starts a real server (granian WSGI by default, or gunicorn gthread) with DEBUG off, Redis cache and
     cached_db sessions, a fresh SECRET_KEY and fresh encryption keys, and beside it a Celery worker on a Redis
     broker that runs what follows a checkout (the aftercare listeners: membership, points, the delivery e-mail),
     as in production (`--no-worker`: those run in place, in the checkout writer's thread, as in the demo);
  3. drives POST /api/v1/shop/orders with wrk (64 connections, session cookie + CSRF header, a unique request_id
     per request): a short warm-up, then a measured run; prints orders/s, p50/p99 and the non-2xx count;
  4. waits for the worker to drain its queue, then checks the database: delivered orders == sold keys, every key
     in at most one order, every order has its keys, wallets debited exactly, every delivered order earned its
     points (the listeners caught up), ledger invariants hold;
  5. replays the same transaction in raw SQL with pgbench at the same client count (the ceiling), checks the
     ledger again, then stops the server and drops the database.

    .venv/bin/python bench/checkout.py [--server granian|gunicorn|both] [--duration 20] [--connections 64]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import common
from common import (
    DEFAULT_PG_URL,
    PYTHON,
    ROOT,
    broker_forget,
    cpu_seconds,
    migrate,
    process_stop,
    redis_forget,
    worker_start,
)

PRICE = Decimal("9.50")
FUNDS_PER_BUYER = Decimal("1000000.00")
ORDER_PATH = "/api/v1/shop/orders"


@dataclass
class Seeded:
    sku_id: int
    key_low: int
    key_high: int
    wallet_low: int
    wallet_high: int
    revenue_account_id: int
    sessions: list[tuple[str, str]]  # (session id, csrf secret) per buyer


# --- environment ----------------------------------------------------------------------------------------------


def in_process(args: argparse.Namespace, run: Callable[[argparse.Namespace, Seeded], None]) -> int:
    """The frame of a benchmark that runs in this process (bench/layers.py, aftercare.py, writer.py): a fresh
    database seeded as this benchmark seeds it, `run`, then the connections closed, the run's Redis keys (and
    broker queue, when it has one) forgotten and the database dropped unless `--keep-database`."""
    env = bench_environment(args)
    os.environ.update(env)
    common.database_create(args.pg_url, args.database)
    try:
        migrate(env)
        run(args, seed(args))
    finally:
        from django.db import connections

        connections.close_all()
        redis_forget(env)
        if args.worker:
            broker_forget(env)
        if not getattr(args, "keep_database", False):
            common.database_drop(args.pg_url, args.database)
    return 0


def bench_environment(args: argparse.Namespace) -> dict[str, str]:
    """Production-like settings for this run only: nothing is read from .env, keys are generated."""
    env = common.bench_environment(
        pg_url=args.pg_url, database=args.database, REDIS_URL=args.redis_url,
        CACHE_KEY_PREFIX=f"kameng-bench-{os.getpid()}",
        KAMENG_VAR_DIR=str(Path(tempfile.gettempdir()) / "kameng-bench-var"),
        CELERY_TASK_ALWAYS_EAGER="0" if args.worker else "1")
    if args.worker:
        env["CELERY_BROKER_URL"] = args.broker_url
    return env


def queue_drain(env: dict[str, str], *, timeout: float = 300) -> float:
    """Wait until the broker's queue is empty and no task is running; the seconds it took."""
    import redis

    client = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    started = time.monotonic()
    quiet_since = None
    while time.monotonic() - started < timeout:
        waiting = client.llen("celery") + client.hlen("unacked")
        if waiting == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.5:
                break
        else:
            quiet_since = None
        time.sleep(0.25)
    return time.monotonic() - started


# --- seeding (in this process, through the real services) -----------------------------------------------------


def seed(args: argparse.Namespace) -> Seeded:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.db import connection
    from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
    from django.utils.crypto import get_random_string

    from kameng.accounts.models import User
    from kameng.catalog.models import Category, Product, Sku
    from kameng.inventory.imports import card_key_batch_create, card_keys_import
    from kameng.inventory.models import CardKey
    from kameng.ledger.models import AccountKind, JournalKind
    from kameng.ledger.services import credit, debit, journal_post, system_account_id, wallet_account_id

    assert settings.SESSION_ENGINE.endswith("cached_db"), "REDIS_URL must turn on cached_db sessions"
    category = Category.objects.create(name="游戏点卡", slug="bench-cards")
    product = Product.objects.create(category=category, name="压测点卡", max_quantity=10)
    sku = Sku.objects.create(product=product, name="10 元", face_value=Decimal("10.00"), price=PRICE)

    started = time.monotonic()
    run = secrets.token_hex(4)
    batch = card_key_batch_create(sku_id=sku.pk, created_by_id=None, source_name="bench")
    for offset in range(0, args.keys, 100_000):
        lines = "\n".join(f"BENCH-{run}-{index:08d}-{secrets.token_hex(6)}"
                          for index in range(offset, min(args.keys, offset + 100_000)))
        batch = card_keys_import(batch=batch, text=lines)
    elapsed = time.monotonic() - started
    print(f"  imported {batch.imported_count:,} card keys in {elapsed:.1f} s "
          f"({batch.imported_count / elapsed:,.0f} keys/s, encrypted + fingerprinted)")
    key_ids = CardKey.objects.filter(sku=sku).order_by("id").values_list("id", flat=True)
    key_low, key_high = key_ids.first(), key_ids.last()

    users = User.objects.bulk_create(
        [User(username=f"bench{run}_{index}", password="!") for index in range(args.buyers)])
    wallet_ids = []
    for user in users:
        wallet_ids.append(wallet_account_id(user_id=user.pk))
    clearing = system_account_id(kind=AccountKind.GATEWAY_CLEARING, suffix="bench")
    for user, wallet_id in zip(users, wallet_ids, strict=True):
        journal_post(kind=JournalKind.WALLET_TOPUP, reference=f"bench-fund-{user.pk}",
                     legs=[debit(clearing, FUNDS_PER_BUYER), credit(wallet_id, FUNDS_PER_BUYER)])
    assert wallet_ids == list(range(wallet_ids[0], wallet_ids[0] + len(wallet_ids))), "wallet ids not contiguous"

    sessions = []
    for user in users:
        # Exactly what django.contrib.auth.login() stores; logging in over HTTP would cost a PBKDF2 hash each.
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        sessions.append((store.session_key or "", get_random_string(CSRF_SECRET_LENGTH, CSRF_ALLOWED_CHARS)))
    revenue = system_account_id(kind=AccountKind.PLATFORM_REVENUE)
    with connection.cursor() as cursor:
        # Only the tables seeded here. The order tables are empty now and fill at ~1,000 rows/s once the run
        # starts: statistics that say "empty" would plan their lookups (the foreign-key checks at COMMIT, in
        # connections that live for the whole run) as sequential scans.
        cursor.execute("VACUUM ANALYZE inventory_cardkey, ledger_account, accounts_user, catalog_sku, catalog_product")
    connection.close()
    return Seeded(sku_id=sku.pk, key_low=key_low or 0, key_high=key_high or 0, wallet_low=wallet_ids[0],
                  wallet_high=wallet_ids[-1], revenue_account_id=revenue, sessions=sessions)


# --- server ---------------------------------------------------------------------------------------------------


# Variant settings that are server flags, not environment: `--variant LABEL:GRANIAN_WORKERS=4,…`.
SERVER_FLAGS = ("GRANIAN_WORKERS", "GRANIAN_THREADS", "GRANIAN_THREADS_IDLE_TIMEOUT", "GUNICORN_WORKERS",
                "GUNICORN_THREADS", "WSGI_APP")


def server_command(kind: str, args: argparse.Namespace, overrides: dict[str, str] | None = None) -> list[str]:
    overrides = overrides or {}
    bind = ["--host", "127.0.0.1", "--port", str(args.port)]
    app = overrides.get("WSGI_APP", "kameng.wsgi:application")
    if kind == "granian":
        return [str(Path(PYTHON).parent / "granian"), "--interface", "wsgi", *bind, "--workers",
                overrides.get("GRANIAN_WORKERS", str(args.granian_workers)), "--blocking-threads",
                overrides.get("GRANIAN_THREADS", str(args.granian_threads)), "--blocking-threads-idle-timeout",
                overrides.get("GRANIAN_THREADS_IDLE_TIMEOUT", "30"), "--no-ws", "--log-level", "warning", app]
    # Threads, not sync workers: the group commit batches what one process has in flight at once.
    return [str(Path(PYTHON).parent / "gunicorn"), app, "--bind", f"127.0.0.1:{args.port}", "--workers",
            overrides.get("GUNICORN_WORKERS", str(args.gunicorn_workers)), "--worker-class", "gthread",
            "--threads", overrides.get("GUNICORN_THREADS", str(args.gunicorn_threads)),
            "--log-level", "warning", "--backlog", "2048"]


def variants_parse(texts: list[str]) -> list[tuple[str, dict[str, str]]]:
    """`LABEL:KEY=VALUE,KEY=VALUE` -> (label, overrides); no variant at all means one run with the defaults."""
    variants = []
    for text in texts or ["default:"]:
        label, _, rest = text.partition(":")
        overrides = dict(item.split("=", 1) for item in rest.split(",") if item)
        variants.append((label or "default", overrides))
    return variants


def server_start(kind: str, args: argparse.Namespace, env: dict[str, str], log: Path,
                 overrides: dict[str, str]) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    process = subprocess.Popen(server_command(kind, args, overrides), cwd=ROOT, env=env, stdout=handle,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    url = f"http://127.0.0.1:{args.port}/api/v1/shop/products"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited at start:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    process_stop(process)
    raise RuntimeError(f"{kind} did not answer within 60 s:\n{log.read_text()[-3000:]}")


def sessions_check(args: argparse.Namespace, seeded: Seeded) -> None:
    """Every buyer's session must be logged in before the load starts (a 401 would be a meaningless run)."""
    for session_id, csrf in seeded.sessions[:: max(1, len(seeded.sessions) // 8)]:
        request = urllib.request.Request(f"http://127.0.0.1:{args.port}/api/v1/shop/wallet",
                                         headers={"Cookie": f"sessionid={session_id}; csrftoken={csrf}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.loads(response.read())
            assert Decimal(str(body["balance"])) > 0, body


# --- load -----------------------------------------------------------------------------------------------------

LUA = r"""
-- Generated by bench/checkout.py: each wrk thread takes its own slice of buyer sessions, round robin.
local sessions = {SESSIONS}
local nthreads = {THREADS}
local counter = 0
local mine = {}
local prefix = ""
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

function init(args)
  for i, s in ipairs(sessions) do
    if (i - 1) % nthreads == tid then table.insert(mine, s) end
  end
  prefix = args[1] .. "-" .. tid .. "-"
end

function request()
  counter = counter + 1
  local s = mine[(counter % #mine) + 1]
  local body = '{"sku_id": {SKU}, "quantity": 1, "request_id": "' .. prefix .. counter .. '"}'
  return wrk.format("POST", "{PATH}", {
    ["Content-Type"] = "application/json",
    ["Cookie"] = "sessionid=" .. s[1] .. "; csrftoken=" .. s[2],
    ["X-CSRFToken"] = s[2],
  }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "non2xx": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def lua_script(seeded: Seeded, threads: int, workdir: Path) -> Path:
    sessions = ", ".join(f'{{"{sid}", "{csrf}"}}' for sid, csrf in seeded.sessions)
    text = (LUA.replace("{SESSIONS}", "{" + sessions + "}").replace("{THREADS}", str(threads))
            .replace("{SKU}", str(seeded.sku_id)).replace("{PATH}", ORDER_PATH))
    path = workdir / "checkout.lua"
    path.write_text(text)
    return path


def wrk_run(args: argparse.Namespace, script: Path, seconds: int, label: str) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    assert wrk, "wrk is not installed (make bench installs Debian's wrk)"
    command = [wrk, "-t", str(args.wrk_threads), "-c", str(args.connections), "-d", f"{seconds}s",
               "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{args.port}", "--", label]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    match = re.search(r"BENCH_JSON (\{.*\})", result.stdout)
    assert match, result.stdout + result.stderr
    figures: dict[str, Any] = json.loads(match.group(1))
    figures["rate"] = figures["requests"] / (figures["duration_us"] / 1e6)
    figures["ok"] = figures["requests"] - figures["non2xx"]
    return figures


# --- verification ---------------------------------------------------------------------------------------------


def verify(seeded: Seeded, expected_buyers: int, *, aftercare: bool = True) -> dict[str, Any]:
    """The invariants after the load: counted in SQL, then the ledger check of the application itself."""
    from django.db import connection

    from kameng.ledger.selectors import ledger_problems

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), coalesce(sum(quantity), 0) FROM orders_order WHERE status = 'delivered'")
        orders, ordered_keys = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM orders_order WHERE status <> 'delivered'")
        (other_orders,) = cursor.fetchone()
        cursor.execute("SELECT count(*), count(DISTINCT id), count(DISTINCT order_id) FROM inventory_cardkey "
                       "WHERE status = 'sold'")
        sold, distinct_sold, orders_with_keys = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM inventory_cardkey WHERE status <> 'sold' AND order_id IS NOT NULL")
        (stray,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM (SELECT o.id FROM orders_order o LEFT JOIN inventory_cardkey k "
                       "ON k.order_id = o.id GROUP BY o.id, o.quantity HAVING count(k.id) <> o.quantity) bad")
        (short_orders,) = cursor.fetchone()
        cursor.execute("SELECT coalesce(sum(balance), 0) FROM ledger_account WHERE kind = 'wallet'")
        (wallets,) = cursor.fetchone()
        cursor.execute("SELECT coalesce(sum(total_amount), 0) FROM orders_order WHERE status = 'delivered'")
        (spent,) = cursor.fetchone()
        # The points listener's journal of each delivered order (reference order:<number>:1).
        cursor.execute("SELECT count(*) FROM orders_order o WHERE o.status = 'delivered' AND NOT EXISTS ("
                       "SELECT 1 FROM ledger_journal j WHERE j.kind = 'points_earn' "
                       "AND j.reference = 'order:' || o.number || ':1')")
        (without_points,) = cursor.fetchone()
    problems = ledger_problems()
    report = {
        "delivered_orders": orders, "sold_keys": sold, "other_orders": other_orders,
        "checks": {
            "delivered keys == sold keys": ordered_keys == sold,
            "sold keys all distinct": distinct_sold == sold,
            "every delivered order has its keys": orders_with_keys == orders and short_orders == 0,
            "no key held by an unsold order": stray == 0,
            "wallets debited exactly": wallets == FUNDS_PER_BUYER * expected_buyers - spent,
            # pgbench's orders bypass the application (no listener hears of them): checked after the HTTP runs only.
            **({"every delivered order earned its points (aftercare caught up)": without_points == 0}
               if aftercare else {}),
            "ledger check passes": not problems,
        },
        "ledger_problems": [f"{p.what}: {p.detail}" for p in problems[:5]],
    }
    connection.close()
    return report


def print_verification(report: dict[str, Any]) -> bool:
    print(f"  delivered orders {report['delivered_orders']:,}, sold keys {report['sold_keys']:,}, "
          f"other orders {report['other_orders']}")
    for name, passed in report["checks"].items():
        print(f"  [{'ok' if passed else 'FAILED'}] {name}")
    for problem in report["ledger_problems"]:
        print(f"    {problem}")
    return all(report["checks"].values())


# --- the raw-SQL ceiling --------------------------------------------------------------------------------------

# The scan start is drawn from the lower four fifths of the seeded ids: the replay cannot wrap around as the service
# does, and after the HTTP runs have sold keys near the top a start up there could find none (an order without
# its key would fail the checks that follow).
PGBENCH_SCRIPT = r"""
\set wallet random(:wallet_low, :wallet_high)
\set start random(:key_low, :key_low + (:key_high - :key_low) * 4 / 5)
BEGIN;
INSERT INTO orders_order (number, buyer_id, sku_id, title, quantity, unit_price, total_amount, refunded_amount,
    price_lines, client_ip, delivery_note, status, request_id, created_at, expires_at, paid_at, delivered_at,
    updated_at)
  SELECT 'P' || txid_current(), owner_id, :sku, '压测点卡 10 元', 1, 9.50, 9.50, 0, '[]', '127.0.0.1', '',
    'delivered', 'pgbench-' || txid_current(), now(), NULL, now(), now(), now()
  FROM ledger_account WHERE id = :wallet
  RETURNING id AS order_id \gset
UPDATE inventory_cardkey SET status = 'sold', order_id = :order_id, sold_at = now()
WHERE status = 'available' AND id IN (
    SELECT id FROM inventory_cardkey
    WHERE sku_id = :sku AND status = 'available' AND id >= :start
      AND (expires_at IS NULL OR expires_at > now())
    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, secret_ciphertext;
INSERT INTO orders_orderevent (order_id, from_status, to_status, kind, params, created_at) VALUES
  (:order_id, '', 'pending_payment', 'created', '{}', now()),
  (:order_id, 'pending_payment', 'paid', 'wallet_paid', '{}', now()),
  (:order_id, 'paid', 'delivered', 'delivered', '{}', now());
INSERT INTO ledger_journal (kind, reference, memo, created_at)
  VALUES ('order_payment', 'P' || txid_current(), '购买 压测点卡 10 元 × 1', now()) RETURNING id AS journal_id \gset
INSERT INTO ledger_entry (journal_id, account_id, side, amount) VALUES
  (:journal_id, :wallet, 'D', 9.50), (:journal_id, :revenue, 'C', 9.50);
UPDATE ledger_account SET balance = balance - 9.50 WHERE id = :wallet AND balance >= 9.50;
END;
"""


def pgbench_run(args: argparse.Namespace, seeded: Seeded, workdir: Path) -> dict[str, float]:
    pgbench = shutil.which("pgbench")
    assert pgbench, "pgbench is not installed (Debian: postgresql-client)"
    script = workdir / "checkout.sql"
    script.write_text(PGBENCH_SCRIPT)
    defines = {"sku": seeded.sku_id, "key_low": seeded.key_low, "key_high": seeded.key_high,
               "wallet_low": seeded.wallet_low, "wallet_high": seeded.wallet_high,
               "revenue": seeded.revenue_account_id}
    command = [pgbench, "-n", "-f", str(script), "-c", str(args.connections), "-j", "2",
               "-T", str(args.pgbench_duration), "-M", "prepared"]
    for name, value in defines.items():
        command += ["-D", f"{name}={value}"]
    command.append(f"{args.pg_url.rstrip('/')}/{args.database}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=args.pgbench_duration + 60,
                            check=True)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    assert tps, result.stdout + result.stderr
    assert latency, result.stdout + result.stderr
    return {"tps": float(tps.group(1)), "latency_ms": float(latency.group(1)),
            "failed": float(failed.group(1)) if failed else 0.0}


# --- main -----------------------------------------------------------------------------------------------------


def measure_server(kind: str, args: argparse.Namespace, env: dict[str, str], seeded: Seeded, workdir: Path, *,
                   label: str = "default", overrides: dict[str, str] | None = None,
                   worker: subprocess.Popen[bytes] | None = None) -> dict[str, Any]:
    overrides = overrides or {}
    server_env = {**env, **{key: value for key, value in overrides.items() if key not in SERVER_FLAGS}}
    shown = "" if not overrides else f" [{label}: {', '.join(f'{k}={v}' for k, v in overrides.items())}]"
    print(f"\n== {kind}: {' '.join(server_command(kind, args, overrides)[1:-1])}{shown}")
    started_load = os.getloadavg()[0]
    process = server_start(kind, args, server_env, workdir / f"{kind}.log", overrides)
    try:
        sessions_check(args, seeded)
        script = lua_script(seeded, args.wrk_threads, workdir)
        # The request_id prefix: unique per run, or a second round would replay the first one's orders (200s).
        tag = f"{kind}-{secrets.token_hex(3)}"
        warm = wrk_run(args, script, args.warmup, f"{tag}-warm")
        print(f"  warm-up {args.warmup} s: {warm['rate']:,.0f} req/s, non-2xx {warm['non2xx']}")
        if worker is not None:
            queue_drain(env)  # the warm-up's aftercare, so that the measured run's is counted alone
        common.filled_tables_analyze(args.pg_url, args.database)
        cpu_before = cpu_seconds(process_group=process.pid, database=args.database)
        worker_before = cpu_seconds(process_group=worker.pid, database="-")[0] if worker else 0.0
        figures = wrk_run(args, script, args.duration, f"{tag}-run")
        cpu_after = cpu_seconds(process_group=process.pid, database=args.database)
        figures["drain_s"] = queue_drain(env) if worker is not None else 0.0
        worker_after = cpu_seconds(process_group=worker.pid, database="-")[0] if worker else 0.0
    finally:
        process_stop(process)
    errors = figures["connect"] + figures["read"] + figures["write"] + figures["timeout"]
    figures["load"] = (started_load, os.getloadavg()[0])
    orders = max(1, figures["ok"])
    figures["server_cpu_ms"] = (cpu_after[0] - cpu_before[0]) / orders * 1000
    figures["postgres_cpu_ms"] = (cpu_after[1] - cpu_before[1]) / orders * 1000
    figures["worker_cpu_ms"] = (worker_after - worker_before) / orders * 1000
    print(f"  {args.connections} clients, {args.duration} s: {figures['ok'] / (figures['duration_us'] / 1e6):,.0f} "
          f"orders/s, p50 {figures['p50_us'] / 1000:.1f} ms, p90 {figures['p90_us'] / 1000:.1f} ms, "
          f"p99 {figures['p99_us'] / 1000:.1f} ms, non-2xx {figures['non2xx']}, socket errors {errors} "
          f"(load average {figures['load'][0]:.1f} -> {figures['load'][1]:.1f})")
    print(f"  CPU per order: server {figures['server_cpu_ms']:.2f} ms, PostgreSQL backends "
          f"{figures['postgres_cpu_ms']:.2f} ms" + (f", Celery worker {figures['worker_cpu_ms']:.2f} ms (its queue "
                                                   f"drained {figures['drain_s']:.1f} s after the run)"
                                                   if worker is not None else ""))
    log = (workdir / f"{kind}.log").read_text(errors="replace").strip()
    log_lines = [line for line in log.splitlines() if "No directory at" not in line and "mw_instance" not in line]
    if log_lines:
        print("  server log (tail):\n    " + "\n    ".join(log_lines[-8:]))
    figures["server"] = kind if label == "default" else f"{kind}[{label}]"
    return figures


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=["granian", "gunicorn", "both"], default="granian")
    parser.add_argument("--duration", type=int, default=20, help="measured seconds per server")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--buyers", type=int, default=256, help="funded buyers, each with its own session")
    parser.add_argument("--keys", type=int, default=300_000)
    parser.add_argument("--granian-workers", type=int, default=2)
    parser.add_argument("--granian-threads", type=int, default=24)
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--gunicorn-threads", type=int, default=24)
    parser.add_argument("--pgbench-duration", type=int, default=15)
    parser.add_argument("--no-pgbench", action="store_true")
    parser.add_argument("--floor", action="store_true",
                        help="also serve the endpoint with a canned checkout (bench/floor_wsgi.py): the framework's "
                             "own cost per request; measured after each round, and each round's ratio read "
                             "against it")
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--database", default="kameng_bench")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--keep-database", action="store_true", help="leave kameng_bench for inspection")
    parser.add_argument("--no-worker", dest="worker", action="store_false",
                        help="run the aftercare listeners in place (eager, in the checkout writer's thread) instead of "
                             "on a Celery worker")
    parser.add_argument("--broker-url", default=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL:KEY=VALUE,...",
                        help="run each server again with these environment settings (or GRANIAN_WORKERS, "
                             "GRANIAN_THREADS, GRANIAN_THREADS_IDLE_TIMEOUT, GUNICORN_WORKERS, GUNICORN_THREADS, "
                             "WSGI_APP); repeatable, "
                             "same database")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the servers x variants list, interleaved")
    return parser.parse_args()


def main() -> int:
    args = parse_arguments()
    args.buyers = max(args.buyers, args.connections)
    env = bench_environment(args)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    workdir = Path(tempfile.mkdtemp(prefix="kameng-bench-"))
    ok = True
    worker: subprocess.Popen[bytes] | None = None
    print(f"kameng checkout benchmark — {os.cpu_count()} CPUs, database {args.database}, Redis {args.redis_url}")
    try:
        common.database_create(args.pg_url, args.database)
        migrate(env)
        seeded = seed(args)
        print(f"  seeded SKU #{seeded.sku_id}, {len(seeded.sessions)} funded buyers with sessions")
        kinds = ["granian", "gunicorn"] if args.server == "both" else [args.server]
        variants = variants_parse(args.variant)
        if args.worker:
            broker_forget(env)
            worker = worker_start(env, workdir / "worker.log")
            print(f"  Celery worker (threads pool, 4 threads) on {args.broker_url} runs the aftercare listeners")
        # With --floor, each round ends with a floor run: the machine's speed drifts by tens of percent within
        # minutes here, so a ratio is read against the floor measured next to it.
        results: list[dict[str, Any]] = []
        floors: list[dict[str, Any]] = []
        for round_index in range(args.rounds):
            for label, overrides in variants:
                for kind in kinds:
                    result = measure_server(kind, args, env, seeded, workdir, label=label, overrides=overrides,
                                            worker=worker)
                    result["round"] = round_index
                    results.append(result)
            if args.floor:
                floors.append(measure_server(kinds[0], args, env, seeded, workdir, label="floor",
                                             overrides={"WSGI_APP": "bench.floor_wsgi:application"}))
        print("\n== verification after the HTTP runs")
        report = verify(seeded, len(seeded.sessions))
        ok = print_verification(report)
        served = sum(result["ok"] for result in results)
        print(f"  2xx responses counted by wrk {served:,} (+ warm-up); orders in the database "
              f"{report['delivered_orders']:,}")
        # Every measured 2xx is a new order (request ids are unique): fewer orders would mean replays were counted.
        backed = report["delivered_orders"] >= served
        print(f"  [{'ok' if backed else 'FAILED'}] an order behind every 2xx")
        ok = backed and ok
        ceiling = None
        if not args.no_pgbench:
            print(f"\n== raw-SQL ceiling: pgbench, the same transaction, {args.connections} clients, "
                  f"{args.pgbench_duration} s")
            ceiling = pgbench_run(args, seeded, workdir)
            print(f"  {ceiling['tps']:,.0f} tx/s, latency average {ceiling['latency_ms']:.1f} ms, "
                  f"failed {ceiling['failed']:.0f}")
            after = verify(seeded, len(seeded.sessions), aftercare=False)
            ok = print_verification(after) and ok
        print("\n== summary")
        for result in results:
            rate = result["ok"] / (result["duration_us"] / 1e6)
            print(f"  {result['server']:20s} {rate:6,.0f} orders/s   p50 {result['p50_us'] / 1000:6.1f} ms   "
                  f"p99 {result['p99_us'] / 1000:6.1f} ms   non-2xx {result['non2xx']}   "
                  f"CPU/order server {result['server_cpu_ms']:.2f} + PostgreSQL {result['postgres_cpu_ms']:.2f} "
                  f"+ worker {result['worker_cpu_ms']:.2f} ms   "
                  f"load {result['load'][0]:.1f} -> {result['load'][1]:.1f}")
        for floor in floors:
            rate = floor["ok"] / (floor["duration_us"] / 1e6)
            print(f"  {'framework floor':20s} {rate:6,.0f} req/s    (the same endpoint, checkout replaced by a canned "
                  f"answer: server CPU {floor['server_cpu_ms']:.2f} ms/request)")
        if floors:
            for label in dict.fromkeys(result["server"] for result in results):
                ratios = [(result["ok"] / result["duration_us"]) / (floors[result["round"]]["ok"]
                                                                    / floors[result["round"]]["duration_us"])
                          for result in results if result["server"] == label]
                print(f"  {label + ' / floor':20s} {', '.join(f'{ratio:.2f}' for ratio in ratios)} by round "
                      f"(each against the floor run right after it), median {statistics.median(ratios):.2f}")
        if ceiling:
            print(f"  {'pgbench':20s} {ceiling['tps']:6,.0f} tx/s      (raw-SQL ceiling, same run)")
        print(f"  invariants: {'all hold' if ok else 'VIOLATED'}")
    finally:
        if worker is not None:
            process_stop(worker)
            log = [line for line in (workdir / "worker.log").read_text(errors="replace").splitlines()
                   if any(word in line for word in ("ERROR", "WARNING", "Traceback", "Error"))]
            if log:
                kept = Path(tempfile.gettempdir()) / f"kameng-bench-worker-{time.strftime('%Y%m%d-%H%M%S')}.log"
                shutil.copyfile(workdir / "worker.log", kept)
                print("  worker log (tail):\n    " + "\n    ".join(log[-8:]) + f"\n  whole worker log kept: {kept}")
        common.run_clean_up(args, env, workdir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
