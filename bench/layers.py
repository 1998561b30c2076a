"""Where a checkout's time goes, layer by layer, in one process (no server, no concurrency).

Seeds a small fresh PostgreSQL database (`kameng_layers`, dropped at the end) and times, per order:
  service   `order_checkout()` called directly (the domain work and its SQL round trips)
  full      POST /api/v1/shop/orders through Django's WSGI handler with every middleware, session from Redis
            (cached_db), CSRF enforced
  bare      a view that does nothing, behind the same middleware (routing + middleware; the session and the
            user are lazy, so neither is loaded)
  auth      the same empty view, but it asks for `request.user` (session read from Redis + user lookup)
and prints ms/op and SQL statements/op for each, then the top of a cProfile of the full path (Python CPU time,
not wall time: on two shared cores CPU is what limits throughput).

    .venv/bin/python bench/layers.py [--orders 400] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import checkout  # the benchmark's environment and seeding helpers

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

urlpatterns: list[object] = []  # filled in after django.setup(): this module doubles as a URLconf


def bare_view(request: HttpRequest) -> HttpResponse:
    from django.http import HttpResponse

    return HttpResponse(b"{}", content_type="application/json")


def auth_view(request: HttpRequest) -> HttpResponse:
    from django.http import HttpResponse

    assert request.user.is_authenticated  # session read + user lookup
    return HttpResponse(b"{}", content_type="application/json")


def timed(label: str, count: int, call: Callable[[int], object]) -> None:
    import redis
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call(-1)  # warm caches (URL resolver, SKU, wallet ids) outside the measurement
    sent = [0]
    execute = redis.Redis.execute_command

    def counted(self: redis.Redis, *args: object, **options: object) -> object:
        if threading.current_thread() is threading.main_thread():
            sent[0] += 1
        return execute(self, *args, **options)

    redis.Redis.execute_command = counted  # type: ignore[method-assign]
    try:
        with CaptureQueriesContext(connection) as queries:
            started, cpu_started, own_started = time.perf_counter(), time.process_time(), time.thread_time()
            for index in range(count):
                call(index)
            elapsed = time.perf_counter() - started
            cpu, own = time.process_time() - cpu_started, time.thread_time() - own_started
    finally:
        redis.Redis.execute_command = execute  # type: ignore[method-assign]
    print(f"  {label:8s} {elapsed / count * 1000:6.2f} ms/op wall   {cpu / count * 1000:6.2f} ms/op Python CPU "
          f"(request thread {own / count * 1000:5.2f})   {len(queries) / count:5.1f} SQL/op   "
          f"{sent[0] / count:4.1f} Redis/op")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--profile", nargs="?", const="full", choices=["full", "auth"],
                        help="cProfile (CPU time) of that path after the timings")
    parser.add_argument("--profile-lines", type=int, default=45)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--database", default="kameng_layers")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    # Tasks are published to a broker nobody consumes: the publishing cost is the server's, as in production,
    # and the listeners' own cost (a worker's) stays out of these figures (bench/aftercare.py measures it).
    args.keys, args.buyers, args.worker = args.orders * 4 + 100, 8, True
    return checkout.in_process(args, run)


def run(args: argparse.Namespace, seeded: checkout.Seeded) -> None:
    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import path

    from kameng.orders.services import order_checkout

    buyer_id = int(__import__("django.contrib.sessions.backends.cached_db", fromlist=["SessionStore"])
                   .SessionStore(seeded.sessions[0][0]).load()["_auth_user_id"])
    session_id, csrf = seeded.sessions[0]
    client = Client(enforce_csrf_checks=True, SERVER_NAME="127.0.0.1")
    client.cookies["sessionid"] = session_id
    client.cookies[settings.CSRF_COOKIE_NAME] = csrf
    urlpatterns[:] = [path("bare", bare_view), path("auth", auth_view),
                      *__import__("kameng.urls", fromlist=["urlpatterns"]).urlpatterns]
    n = args.orders
    print(f"\nper-order cost in one process, {n} orders each (PostgreSQL + Redis on 127.0.0.1)")

    timed("service", n, lambda i: order_checkout(buyer_id=buyer_id, sku_id=seeded.sku_id, quantity=1,
                                                 request_id=f"svc-{i}"))

    def post(i: int) -> object:
        response = client.post("/api/v1/shop/orders", data=json.dumps(
            {"sku_id": seeded.sku_id, "quantity": 1, "request_id": f"http-{i}"}),
            content_type="application/json", headers={"X-CSRFToken": csrf})
        assert response.status_code in (200, 201), response.content
        return response

    with override_settings(ROOT_URLCONF=__name__):
        timed("full", n, post)
        timed("bare", n, lambda _i: client.post("/bare", headers={"X-CSRFToken": csrf}))
        timed("auth", n, lambda _i: client.post("/auth", headers={"X-CSRFToken": csrf}))
        if args.profile:
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for index in range(n):
                if args.profile == "full":
                    post(10_000 + index)
                else:
                    client.post("/auth", headers={"X-CSRFToken": csrf})
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile_lines)
            print(out.getvalue())


if __name__ == "__main__":
    sys.exit(main())
