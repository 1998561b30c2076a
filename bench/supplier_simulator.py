"""Supplier simulator benchmark: how many Fulu gateway calls per second it serves at a given latency.

What one run does, on 127.0.0.1 and bounded in time:
  1. starts `python -m kameng.simulators.supplier` (one merchant, no callbacks) with `--latency-ms`;
  2. wrk (when installed), `--connections` connections for `--duration` s, every request a signed order query:
     the gateway's full path (parse, signature check, answer signed) behind the latency — requests/s beside the
     ceiling connections / latency;
  3. the real connector (kameng.suppliers.connectors.fulu, its shared connection pool) from `--threads` threads,
     each submitting 话费 orders with unique numbers for `--duration` s — submits/s beside threads / latency, then
     checks with the simulator's counters that every number was submitted exactly once and every accepted order
     exists once;
  4. stops the simulator.

    .venv/bin/python bench/supplier_simulator.py [--latency-ms 200] [--connections 200] [--threads 120]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

from common import ROOT, process_stop

sys.path.insert(0, str(ROOT))

from kameng.suppliers.connectors.base import TopupKind, TopupRequest
from kameng.suppliers.connectors.fulu import FuluConnector, compact_json

APP_KEY, SECRET = "bench", "bench-secret"


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _start(port: int, latency_ms: float) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "kameng.simulators.supplier", "--port", str(port), "--merchant",
         f"{APP_KEY}:{SECRET}", "--latency-ms", str(latency_ms), "--process-ms", "600000",
         "--callbacks-enabled", "false"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            _get(f"http://127.0.0.1:{port}/admin/state")
            return process
        except OSError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit("the supplier simulator did not start")


def _wrk(connector: FuluConnector, url: str, connections: int, duration: int) -> str:
    if shutil.which("wrk") is None:
        return "wrk not installed: skipped"
    body = compact_json(connector.envelope("fulu.order.info.get", {"customer_order_no": "bench-query"}))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                     'wrk.headers["Content-Type"] = "application/json"\n')
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name, url],
        capture_output=True, text=True, timeout=duration + 30, check=False)
    Path(script.name).unlink()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    p50 = re.search(r"50%\s+(\S+)", result.stdout)
    p99 = re.search(r"99%\s+(\S+)", result.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", result.stdout)
    return (f"{rps.group(1) if rps else '?'} requests/s, p50 {p50.group(1) if p50 else '?'}, "
            f"p99 {p99.group(1) if p99 else '?'}{', ' + errors.group(0) if errors else ''}")


def _submits(connector: FuluConnector, threads: int, duration: int) -> tuple[float, Counter[str], int]:
    numbers = (f"B{os.getpid()}-{n}" for n in itertools.count())
    lock = threading.Lock()
    outcomes: Counter[str] = Counter()
    stop_at = time.monotonic() + duration

    def worker() -> None:
        while time.monotonic() < stop_at:
            with lock:
                number = next(numbers)
            answer = connector.topup_submit(TopupRequest(number, TopupKind.MOBILE, "10030", 1,
                                                         charge_account="13812345678", face_value=Decimal("30")))
            with lock:
                outcomes[answer.outcome.value] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(threads):
            pool.submit(worker)
    elapsed = time.monotonic() - started
    sent = sum(outcomes.values())
    return sent / elapsed, outcomes, sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8190)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--threads", type=int, default=120)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    connector = FuluConnector({"gateway_url": f"{base}/api/getway", "app_key": APP_KEY, "app_secret": SECRET})
    process = _start(args.port, args.latency_ms)
    try:
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        latency = args.latency_ms / 1000
        gateway = _wrk(connector, base + "/api/getway", args.connections, args.duration)
        print(f"gateway (wrk, {args.connections} connections, {args.latency_ms:.0f} ms latency, ceiling "
              f"{args.connections / latency:.0f}/s): {gateway}")
        rate, outcomes, sent = _submits(connector, args.threads, args.duration)
        print(f"submits (connector, {args.threads} threads, ceiling {args.threads / latency:.0f}/s): "
              f"{rate:.0f}/s, {dict(outcomes)}")
        report = _get(f"{base}/admin/submissions")
        exactly_once = (report["total_submits"] == report["distinct_numbers"] == sent
                        and report["orders"] == outcomes["processing"] and not report["resubmitted"])
        print(f"simulator counted {report['total_submits']} submits of {report['distinct_numbers']} numbers, "
              f"{report['orders']} orders: exactly once {'OK' if exactly_once else 'FAILED'}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        return 0 if exactly_once else 1
    finally:
        process_stop(process)


if __name__ == "__main__":
    sys.exit(main())
