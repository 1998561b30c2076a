"""Direct top-up benchmark: 10,000 paid 话费 orders through routing, submit, callback and settlement against the
supplier simulator (Fulu protocol) at 200 ms gateway latency, on one worker node; completions/s beside the ideal.

Everything after the seeding runs as production runs it (DEVELOPERS.md, "Running it for real"; the same settings):
  1. creates a fresh PostgreSQL database (`kameng_bench_topup`), migrates it, seeds one 话费 SKU (¥50), one approved
     Fulu supplier whose offer wins the route, and N paid orders (written set-based through the checkout's own
     drafting and writing, their money in the orders-in-progress hold, each with a phone number to credit);
  2. starts the supplier simulator (`python -m kameng.simulators.supplier`, --latency-ms 200, callbacks to the
     platform), a web server for the callbacks (granian WSGI, DEBUG off), a Celery worker and Celery beat on a Redis
     broker;
  3. the clock starts: this process hands every order to the worker as the checkout does after commit
     (`order_fulfilment_enqueue`, batched into `fulfil_orders` tasks by kameng.orders.fulfilment_queue); the worker
     routes them, its dispatcher submits the attempts (event loop, batched claims and answers), the simulator calls
     back, the web server makes the attempts due, the worker's due poller queries them and settles the orders
     (DELIVERED, hold → revenue); beat sends the sweeper every 10 s;
  4. prints completions/s (orders settled per second, first enqueue to last settlement) beside the ideal (calls in
     flight ÷ gateway latency, halved per order: a submit and a query), the CPU of every process per order, the load;
  5. checks: every order settled (delivered), the simulator saw every customer_order_no exactly once, one attempt
     per order, revenue == N × price, ledger invariants hold. Then stops what it started and drops the database.

    .venv/bin/python bench/topup.py [--orders 10000] [--latency-ms 200] [--threads 256] [--unknown-rate 0.0]
                                    [--worker-concurrency N (default: one worker process per CPU)]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

from common import DEFAULT_PG_URL, PYTHON, ROOT, database_create, database_drop, django_start, migrate
from common import bench_environment as common_environment

PRICE = Decimal("50.00")
COST = Decimal("49.00")
APP_KEY = "bench-topup"
APP_SECRET = "bench-topup-secret"
BUYERS = 500


def bench_environment(args: argparse.Namespace) -> dict[str, str]:
    return common_environment(
        pg_url=args.pg_url, database=args.database,
        KAMENG_VAR_DIR=str(Path(tempfile.gettempdir()) / "kameng-bench-topup-var"),
        SITE_URL=f"http://127.0.0.1:{args.web_port}",
        CELERY_TASK_ALWAYS_EAGER="0",
        CELERY_BROKER_URL=args.broker_url,
        # The aftercare listeners (membership, points, delivery e-mail) are other apps' work: left out here.
        KAMENG_ORDER_AFTERCARE="",
        KAMENG_TOPUP_DISPATCH_THREADS=str(args.threads),
        KAMENG_TOPUP_QUERY_FIRST_SECONDS="2",
        KAMENG_TOPUP_NOT_FOUND_GRACE_SECONDS="5",
        KAMENG_TOPUP_CALLBACK_WAIT_SECONDS="20",
        KAMENG_TOPUP_SUBMIT_TIMEOUT_SECONDS="15",
    )


# --- seeding (in this process, through the real services) -----------------------------------------------------

def seed(args: argparse.Namespace) -> tuple[int, list[int]]:
    """The SKU, the supplier and its offer, funded buyers, and N paid orders; returns (supplier id, order ids)."""
    from django.db import IntegrityError, connection, transaction
    from django.utils import timezone

    from kameng.accounts.models import User
    from kameng.catalog.models import Category, DeliveryKind, Product, Sku
    from kameng.catalog.pricing import SALES_CHANNEL_STOREFRONT, sku_price
    from kameng.catalog.selectors import skus_for_sale
    from kameng.ledger.models import AccountKind, JournalKind
    from kameng.ledger.services import credit, debit, journal_post, system_account_id, wallet_account_id
    from kameng.orders import fulfilment
    from kameng.orders.checkout import checkout_draft, drafts_write
    from kameng.orders.models import Order
    from kameng.suppliers.models import ConnectorKind, Supplier, SupplierOffer, SupplierStatus

    category = Category.objects.create(name="话费充值", slug="bench-topup")
    product = Product.objects.create(category=category, name="全国三网话费", delivery_kind=DeliveryKind.DIRECT_TOPUP,
                                     topup_form=[{"name": "phone", "label": "手机号", "kind": "phone",
                                                  "required": True}])
    sku = Sku.objects.create(product=product, name="50 元", face_value=Decimal("50.00"), price=PRICE)
    owner = User.objects.create(username="bench-supplier", password="!")
    supplier = Supplier.objects.create(
        owner=owner, name="压测供货商", status=SupplierStatus.APPROVED, connector_kind=ConnectorKind.FULU,
        connector_config=json.dumps({"gateway_url": f"http://127.0.0.1:{args.sim_port}/api/getway",
                                     "app_key": APP_KEY, "app_secret": APP_SECRET}))
    SupplierOffer.objects.create(supplier=supplier, sku=sku, price=COST, upstream_product_id="10050")

    users = User.objects.bulk_create([User(username=f"bench-buyer-{index}", password="!") for index in range(BUYERS)])
    clearing = system_account_id(kind=AccountKind.GATEWAY_CLEARING, suffix="bench")
    funds = PRICE * (args.orders // BUYERS + 1)
    wallets = {user.pk: wallet_account_id(user_id=user.pk) for user in users}
    for user in users:
        journal_post(kind=JournalKind.WALLET_TOPUP, reference=f"bench-fund-{user.pk}",
                     legs=[debit(clearing, funds), credit(wallets[user.pk], funds)])

    handed_over = fulfilment.order_fulfilment_enqueue
    fulfilment.order_fulfilment_enqueue = lambda *, order_id: None  # the timed run hands them over
    for_sale = skus_for_sale(sku_ids=[sku.pk])[sku.pk]
    started = time.monotonic()
    for offset in range(0, args.orders, BUYERS):
        now = timezone.now()
        batch = users[:min(BUYERS, args.orders - offset)]  # one order per buyer per batch
        for tries_left in (2, 1, 0):
            drafts = [checkout_draft(sku=for_sale, quote=sku_price(sku=for_sale, buyer_id=user.pk, quantity=1,
                                                                   sales_channel=SALES_CHANNEL_STOREFRONT),
                                     buyer_id=user.pk, request_id=None, wallet_id=wallets[user.pk], client_ip="",
                                     now=now)
                      for user in batch]
            try:
                with transaction.atomic():
                    drafts_write(drafts, now)
                break
            except IntegrityError:
                # Two order numbers drawn alike (the millisecond + 6 random digits of kameng.core.ids: 500 drafts
                # share a few milliseconds, ~1 run in 10 met one): the batch is drafted again with new numbers.
                if not tries_left:
                    raise
    # Every order credits the same number: one ciphertext for all (the bench does not measure the buyer's form).
    Order.objects.filter(sku=sku).update(topup_target=json.dumps({"phone": "13800138000"}))
    fulfilment.order_fulfilment_enqueue = handed_over
    print(f"  seeded {args.orders:,} paid orders in {time.monotonic() - started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE orders_order, orders_orderevent, ledger_account, suppliers_supplieroffer")
    ids = list(Order.objects.filter(sku=sku).order_by("pk").values_list("pk", flat=True))
    connection.close()
    return supplier.pk, ids


# --- processes ------------------------------------------------------------------------------------------------

def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise RuntimeError(f"{name} did not answer within 60 s:\n{log.read_text()[-3000:]}")


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # the group of a process this script started
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def group_cpu_seconds(process: subprocess.Popen[bytes] | None) -> float:
    """User + system CPU of a process started here and of its children (granian's worker), from /proc."""
    if process is None or not Path("/proc").is_dir():
        return 0.0
    pids, found = [process.pid], [process.pid]
    while found:
        children = []
        for pid in found:
            try:
                children += [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                             for child in (task / "children").read_text().split()]
            except OSError:
                continue
        pids += children
        found = children
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def database_backends_cpu_seconds(database: str) -> dict[int, float]:
    """CPU so far of each PostgreSQL backend serving this run's database (same machine, from /proc), by pid."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database])
        pids = [row[0] for row in cursor.fetchall()]
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def ended_backends_cpu_seconds() -> float:
    """CPU so far of the PostgreSQL backends that have ended (any database): the postmaster's reaped children, from
    /proc (same machine). The backends-alive figure misses a connection opened and closed during the run."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    try:
        postmaster = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1]
        fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime


def machine_busy_cpu_seconds() -> float:
    """CPU time all cores spent busy so far (/proc/stat: everything on the machine, other work included)."""
    try:
        values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user … steal (guest time is inside user)


def simulator_get(args: argparse.Namespace, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{args.sim_port}{path}", timeout=30) as response:
        return json.loads(response.read())


# --- the timed run --------------------------------------------------------------------------------------------

def run(args: argparse.Namespace, order_ids: list[int], helpers: dict[str, subprocess.Popen[bytes]]) -> dict[str, Any]:
    from django.db.models import Count, Max, Min
    from django.utils import timezone

    from kameng.orders.fulfilment import order_fulfilment_enqueue
    from kameng.orders.fulfilment_queue import fulfilment_publisher_flush
    from kameng.orders.models import Order, OrderStatus
    from kameng.suppliers.models import TopupAttempt

    settled_states = [OrderStatus.DELIVERED, OrderStatus.REFUNDED]
    span = (min(order_ids), max(order_ids))  # the bench's orders (a range: 10,000 ids as parameters cost CPU)
    load_before = os.getloadavg()
    helpers_before = {name: group_cpu_seconds(process) for name, process in helpers.items()}
    cpu_before = os.times()
    database_before = database_backends_cpu_seconds(args.database)
    ended_before, machine_before = ended_backends_cpu_seconds(), machine_busy_cpu_seconds()
    started = time.monotonic()
    started_at = timezone.now()
    # What the checkout does after each payment commits (kameng.orders.checkout._fulfil_after_commit).
    for order_id in order_ids:
        order_fulfilment_enqueue(order_id=order_id)
    fulfilment_publisher_flush()
    handed = time.monotonic()
    cpu_handed = os.times()
    deadline = started + args.timeout
    settled = 0
    while time.monotonic() < deadline:
        settled = Order.objects.filter(pk__range=span, status__in=settled_states).count()
        if settled == len(order_ids):
            break
        time.sleep(0.5)
    helpers_cpu = {name: group_cpu_seconds(process) - helpers_before[name] for name, process in helpers.items()}
    cpu_after = os.times()
    # The backends alive at the end (the processes' connections are long-lived), less what they had at the start:
    # a backend that came and went in between is not counted, so this is a floor.
    database_after = database_backends_cpu_seconds(args.database)
    ended_cpu = ended_backends_cpu_seconds() - ended_before
    machine_cpu = machine_busy_cpu_seconds() - machine_before
    helpers_cpu["PostgreSQL (this run's backends)"] = sum(
        seconds - database_before.get(pid, 0.0) for pid, seconds in database_after.items())
    times = TopupAttempt.objects.aggregate(first=Min("submitted_at"), last=Max("submitted_at"))
    last_done = Order.objects.filter(pk__range=span).aggregate(last=Max("delivered_at"))["last"]
    first_submit, last_submit = times["first"], times["last"]
    attempts = TopupAttempt.objects.count()
    per_order = dict(TopupAttempt.objects.values("order_id").annotate(n=Count("pk")).values_list("order_id", "n"))
    elapsed = (last_done - started_at).total_seconds() if last_done else time.monotonic() - started
    submit_span = (last_submit - first_submit).total_seconds() if last_submit and first_submit else 0.0
    return {
        "orders": len(order_ids), "settled": settled, "attempts": attempts,
        "orders_with_more_than_one_attempt": sum(1 for count in per_order.values() if count > 1),
        "handover_seconds": handed - started, "elapsed_seconds": elapsed, "submit_span_seconds": submit_span,
        "completions_per_second": settled / elapsed if elapsed else 0.0,
        "submits_per_second": attempts / submit_span if submit_span else 0.0,
        "ideal_calls_per_second": args.threads * args.worker_concurrency / (args.latency_ms / 1000),
        "handover_cpu_seconds": (cpu_handed.user - cpu_before.user) + (cpu_handed.system - cpu_before.system),
        "helpers_cpu_seconds": helpers_cpu,
        "load_before": load_before, "load_after": os.getloadavg(),
        "statuses": dict(Order.objects.filter(pk__range=span).values("status").annotate(n=Count("pk"))
                         .values_list("status", "n")),
        "bench_cpu_seconds": (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system),
        "ended_backends_cpu_seconds": ended_cpu, "machine_cpu_seconds": machine_cpu,
    }


def verify(args: argparse.Namespace, result: dict[str, Any]) -> bool:
    from django.db.models import Sum

    from kameng.ledger.models import AccountKind, Entry, Side
    from kameng.ledger.selectors import ledger_problems
    from kameng.suppliers.models import TopupAttempt

    report = simulator_get(args, "/admin/submissions")
    submissions: dict[str, int] = report["submissions"]
    numbers = set(TopupAttempt.objects.values_list("customer_order_no", flat=True))
    revenue_entries = Entry.objects.filter(account__kind=AccountKind.PLATFORM_REVENUE)
    revenue = ((revenue_entries.filter(side=Side.CREDIT).aggregate(total=Sum("amount"))["total"] or 0)
               - (revenue_entries.filter(side=Side.DEBIT).aggregate(total=Sum("amount"))["total"] or 0))
    delivered = result["statuses"].get("delivered", 0)
    checks = {
        "every order settled": result["settled"] == result["orders"],
        "every attempt submitted exactly once (simulator)": (set(submissions) == numbers
                                                             and all(count == 1 for count in submissions.values())),
        "submits seen by the simulator == attempts": report["total_submits"] == result["attempts"],
        "revenue == delivered orders × price": revenue == delivered * PRICE,
        "ledger invariants hold": not ledger_problems(),
    }
    if args.unknown_rate == 0:
        checks["one attempt per order, all delivered"] = (result["attempts"] == result["orders"] == delivered)
    print(f"  simulator: {report['total_submits']:,} submits of {report['distinct_numbers']:,} numbers, "
          f"resubmitted {len(report['resubmitted'])}, order states {report['order_states']}, callbacks sent "
          f"{report['callbacks_sent']:,} acknowledged {report['callbacks_acknowledged']:,}")
    for name, passed in checks.items():
        print(f"  [{'ok' if passed else 'FAILED'}] {name}")
    return all(checks.values())


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--threads", type=int, default=256,
                        help="calls in flight per worker process (KAMENG_TOPUP_DISPATCH_THREADS)")
    parser.add_argument("--worker-pool", default="prefork", help="the Celery worker's --pool")
    parser.add_argument("--worker-concurrency", type=int, default=os.cpu_count() or 1,
                        help="the Celery worker's --concurrency (processes with prefork, each with a dispatcher; "
                             "default: one per CPU, Celery's own default — the node's unit in DEVELOPERS.md runs 8)")
    parser.add_argument("--web-threads", type=int, default=16, help="callback server blocking threads")
    parser.add_argument("--unknown-rate", type=float, default=0.0,
                        help="share of submits the simulator accepts but whose answer it loses (504)")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/12",
                        help="the Celery broker of this run (its queue is emptied first)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds before the run gives up waiting")
    parser.add_argument("--web-port", type=int, default=8150)
    parser.add_argument("--sim-port", type=int, default=8151)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--database", default="kameng_bench_topup")
    parser.add_argument("--keep-database", action="store_true")
    return parser.parse_args()


def broker_empty(url: str) -> None:
    """Forget tasks an earlier run left in this run's broker (its default queue only)."""
    import redis

    redis.Redis.from_url(url).delete("celery")


def main() -> int:
    args = parse_arguments()
    env = bench_environment(args)
    workdir = Path(tempfile.mkdtemp(prefix="kameng-bench-topup-"))
    simulator = web = worker = beat = None
    print(f"direct top-up benchmark: {args.orders:,} orders, gateway latency {args.latency_ms} ms, "
          f"{args.threads} calls in flight per worker process, worker --pool {args.worker_pool} --concurrency "
          f"{args.worker_concurrency}, unknown rate {args.unknown_rate}")
    database_create(args.pg_url, args.database)
    try:
        migrate(env, timeout=600)
        broker_empty(args.broker_url)
        django_start(env)
        supplier_id, order_ids = seed(args)
        notify = f"http://127.0.0.1:{args.web_port}/suppliers/callback/{supplier_id}/"
        simulator = start([PYTHON, "-m", "kameng.simulators.supplier", "--port", str(args.sim_port),
                           "--merchant", f"{APP_KEY}:{APP_SECRET}:1:{notify}", "--seed", "1",
                           "--latency-ms", str(args.latency_ms), "--unknown-rate", str(args.unknown_rate)],
                          env, workdir / "simulator.log")
        wait_for(f"http://127.0.0.1:{args.sim_port}/healthz", simulator, workdir / "simulator.log", "simulator")
        web = start([str(Path(PYTHON).parent / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port",
                     str(args.web_port), "--workers", "1", "--blocking-threads", str(args.web_threads), "--no-ws",
                     "--log-level", "warning", "kameng.wsgi:application"], env, workdir / "web.log")
        wait_for(f"http://127.0.0.1:{args.web_port}/suppliers/callback/{supplier_id}/", web, workdir / "web.log",
                 "web")
        # The worker and beat as the systemd units of DEVELOPERS.md start them.
        worker = start([PYTHON, "-m", "celery", "-A", "kameng", "worker", "--loglevel", "WARNING", "--pool",
                        args.worker_pool, "--concurrency", str(args.worker_concurrency), "--hostname",
                        f"bench-topup-{os.getpid()}@%h", "--without-gossip", "--without-mingle"],
                       env, workdir / "worker.log")
        beat = start([PYTHON, "-m", "celery", "-A", "kameng", "beat", "--loglevel", "WARNING", "--schedule",
                      str(workdir / "celerybeat-schedule")], env, workdir / "beat.log")
        wait_for_worker(args, worker, workdir / "worker.log")
        helpers = {"worker": worker, "callback server": web, "simulator": simulator, "beat": beat}
        result = run(args, order_ids, helpers)
        report(args, result)
        ok = verify(args, result)
        return 0 if ok else 1
    finally:
        for process in (worker, beat, web, simulator):
            stop(process)
        from django.db import connections

        connections.close_all()
        if not args.keep_database:
            database_drop(args.pg_url, args.database)
        print(f"  logs: {workdir}")


def wait_for_worker(args: argparse.Namespace, worker: subprocess.Popen[bytes], log: Path) -> None:
    """Until the worker answers a ping (its processes are up and consuming)."""
    from kameng.celery import app

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited at start:\n{log.read_text()[-3000:]}")
        if app.control.ping(timeout=1.0):
            time.sleep(1.0)  # the dispatcher hosts start as the processes come up
            return
    raise RuntimeError(f"the worker did not answer within 120 s:\n{log.read_text()[-3000:]}")


def report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    orders = max(result["orders"], 1)
    ideal_calls = result["ideal_calls_per_second"]
    print(f"  completions/s: {result['completions_per_second']:,.0f} (ideal {ideal_calls / 2:,.0f} orders/s = "
          f"{args.threads} calls in flight × {args.worker_concurrency} worker processes ÷ {args.latency_ms} ms = "
          f"{ideal_calls:,.0f} calls/s, two calls an order); "
          f"submits/s {result['submits_per_second']:,.0f}; {result['settled']:,}/{result['orders']:,} settled in "
          f"{result['elapsed_seconds']:.1f} s (handing over all orders took {result['handover_seconds']:.1f} s)")
    cpu = dict(result["helpers_cpu_seconds"])
    cpu["enqueue (this process, as the checkout)"] = result["handover_cpu_seconds"]
    print("  CPU per process: " + ", ".join(f"{name} {seconds:.1f} s ({1000 * seconds / orders:.2f} ms/order)"
                                           for name, seconds in cpu.items()))
    total = sum(cpu.values())
    print(f"  all together {1000 * total / orders:.2f} ms/order → two cores allow {2000 / (1000 * total / orders):,.0f}"
          f" orders/s; load average {result['load_before'][0]:.1f} → {result['load_after'][0]:.1f} (2 cores, "
          f"shared); statuses {result['statuses']}")
    print(f"  not in that sum: PostgreSQL backends that ended during the run (any database) "
          f"{1000 * result['ended_backends_cpu_seconds'] / orders:.2f} ms/order; the whole machine busy "
          f"{1000 * result['machine_cpu_seconds'] / orders:.2f} ms/order (anything else running included)")


if __name__ == "__main__":
    sys.exit(main())
