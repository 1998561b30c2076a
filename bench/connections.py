"""PostgreSQL connections held by one server process across idle-then-busy cycles (granian retires idle threads).

granian ends a blocking thread that stayed idle longer than `--blocking-threads-idle-timeout` (30 s by default,
5 s at least) and starts a new one when load comes back. A connection kept per thread was left open by every
retired thread until the garbage collector ran; now it is closed with its thread (kameng.core.db), and with
DATABASE_POOL=1 the process holds at most the pool's size. One run, all on 127.0.0.1 and bounded in time:
  1. creates a fresh PostgreSQL database (`kameng_connections`) and migrates it;
  2. starts the server as bench/checkout.py does (granian WSGI, or gunicorn gthread), one worker by default, with a
     short idle timeout so that a cycle takes seconds;
  3. per cycle: a burst of concurrent catalogue requests (each reads the database), then an idle gap longer than
     the idle timeout; prints the connections to the database (pg_stat_activity) after the burst and after the gap;
  4. stops the server and drops the database.

    .venv/bin/python bench/connections.py [--server granian|gunicorn] [--cycles 3] [--threads 24] [--idle-timeout 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import checkout  # the benchmark's environment, database and server helpers
import common


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=["granian", "gunicorn"], default="granian")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=24)
    parser.add_argument("--idle-timeout", type=int, default=5, help="granian's blocking-thread idle timeout, s")
    parser.add_argument("--requests", type=int, default=600, help="requests per burst")
    parser.add_argument("--clients", type=int, default=48, help="concurrent clients in a burst")
    parser.add_argument("--port", type=int, default=8732)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--database", default="kameng_connections")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL:KEY=VALUE,...",
                        help="run again with these environment settings (e.g. DATABASE_POOL=1); repeatable")
    args = parser.parse_args()
    # What checkout.server_command reads.
    args.granian_workers = args.gunicorn_workers = args.workers
    args.granian_threads = args.gunicorn_threads = args.threads
    return args


def connections_count(args: argparse.Namespace) -> int:
    with common.admin_connect(args.pg_url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [args.database]).fetchone()
    return int(row[0])


def burst(args: argparse.Namespace) -> int:
    """Concurrent catalogue reads; returns how many did not answer 200."""
    url = f"http://127.0.0.1:{args.port}/api/v1/shop/products"

    def get(_: int) -> int:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return 0 if response.status == 200 else 1
        except OSError:
            return 1

    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        return sum(pool.map(get, range(args.requests)))


def cycles_run(args: argparse.Namespace, env: dict[str, str], label: str, overrides: dict[str, str],
               workdir: Path) -> None:
    overrides = {"GRANIAN_THREADS_IDLE_TIMEOUT": str(args.idle_timeout), **overrides}
    print(f"\n== {args.server}[{label}]: {args.workers} worker(s) x {args.threads} threads, "
          f"{args.requests} requests by {args.clients} clients per burst, idle gaps of {args.idle_timeout + 3} s")
    server_env = {**env, **{key: value for key, value in overrides.items() if key not in checkout.SERVER_FLAGS}}
    process = checkout.server_start(args.server, args, server_env, workdir / f"{label}.log", overrides)
    after_gaps = []  # what the server holds while idle: a leak grows it, the garbage collector may shrink it
    busiest = 0
    try:
        for cycle in range(1, args.cycles + 1):
            failed = burst(args)
            busy = connections_count(args)
            busiest = max(busiest, busy)
            time.sleep(args.idle_timeout + 3)
            idle = connections_count(args)
            after_gaps.append(idle)
            print(f"  cycle {cycle}: connections after the burst {busy:3d}, after the idle gap {idle:3d}"
                  f"   (non-200: {failed})")
    finally:
        common.process_stop(process)
    print(f"  most connections: {busiest} after a burst, {max(after_gaps)} while idle "
          f"({args.workers} worker(s) x {args.threads} threads)")


def main() -> int:
    args = parse_arguments()
    env = checkout.bench_environment(args)
    workdir = Path(tempfile.mkdtemp(prefix="kameng-connections-"))
    print(f"kameng connections per server process — database {args.database}")
    try:
        common.database_create(args.pg_url, args.database)
        checkout.migrate(env)
        for label, overrides in checkout.variants_parse(args.variant):
            cycles_run(args, env, label, overrides, workdir)
    finally:
        common.database_drop(args.pg_url, args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
