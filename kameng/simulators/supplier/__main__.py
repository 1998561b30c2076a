"""`python -m kameng.simulators.supplier --port 8190 …`: run the supplier simulator (one asyncio event loop, the
aiohttp.web server of server.py).

Merchants come from `--config FILE` (JSON: {"merchants": [{"app_key", "app_secret", "name", "notify_url",
"price_factor", "prices", "stock"}], "knobs": {…}}) and/or `--merchant KEY:SECRET[:PRICE_FACTOR[:NOTIFY_URL]]`;
with neither, the two demo merchants with the secrets `<app_key>-secret` and no notify URL. Every knob is a flag
(`--latency-ms 200`), an environment variable (KAMENG_SUPPLIER_SIM_LATENCY_MS=200) or, at run time,
`POST /admin/knobs {"latency_ms": 200}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from kameng.simulators.supplier.app import SupplierSimulatorApp, merchant_from_dict
from kameng.simulators.supplier.catalog import DEMO_MERCHANTS, DEMO_PRICE_OVERRIDES
from kameng.simulators.supplier.core import Knobs, Merchant, SupplierSimulator

ENV_PREFIX = "KAMENG_SUPPLIER_SIM_"
READY_LINE = "supplier simulator ready"


def _parse_merchant(text: str) -> Merchant:
    parts = text.split(":", 3)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise argparse.ArgumentTypeError("expected KEY:SECRET[:PRICE_FACTOR[:NOTIFY_URL]]")
    return Merchant(app_key=parts[0], app_secret=parts[1],
                    price_factor=Decimal(parts[2]) if len(parts) > 2 and parts[2] else Decimal("1"),
                    notify_url=parts[3] if len(parts) > 3 else "")


def demo_merchants() -> list[Merchant]:
    return [Merchant(app_key=demo.app_key, app_secret=f"{demo.app_key}-secret", name=demo.name,
                     price_factor=demo.price_factor,
                     prices={product: price for (key, product), price in DEMO_PRICE_OVERRIDES.items()
                             if key == demo.app_key})
            for demo in DEMO_MERCHANTS]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kameng.simulators.supplier", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get(ENV_PREFIX + "PORT", "8090")))
    parser.add_argument("--config", type=Path, help="JSON file with merchants and knobs")
    parser.add_argument("--merchant", type=_parse_merchant, action="append", default=[],
                        help="KEY:SECRET[:PRICE_FACTOR[:NOTIFY_URL]], repeatable")
    parser.add_argument("--seed", type=int, default=None, help="random seed (reproducible refusals/failures)")
    parser.add_argument("--access-log", action="store_true", help="(ignored: the lean server keeps no access log)")
    defaults = Knobs()
    for item in fields(Knobs):
        flag = "--" + item.name.replace("_", "-")
        default = getattr(defaults, item.name)
        env = os.environ.get(ENV_PREFIX + item.name.upper())
        if isinstance(default, bool):
            parser.add_argument(flag, type=lambda value: value.lower() in ("1", "true", "yes", "on"),
                                default=None if env is None else env.lower() in ("1", "true", "yes", "on"),
                                metavar="BOOL", help=f"(default {default})")
        else:
            parser.add_argument(flag, type=type(default), default=None if env is None else type(default)(env),
                                help=f"(default {default})")
    return parser


def simulator_from_options(options: argparse.Namespace) -> SupplierSimulator:
    config: dict[str, Any] = {}
    if options.config:
        config = json.loads(options.config.read_text(encoding="utf-8"))
    merchants = [merchant_from_dict(item) for item in config.get("merchants", [])] + list(options.merchant)
    knobs = Knobs()
    knobs.update(config.get("knobs", {}))
    knobs.update({item.name: getattr(options, item.name) for item in fields(Knobs)
                  if getattr(options, item.name) is not None})
    return SupplierSimulator(merchants=merchants or demo_merchants(), knobs=knobs, seed=options.seed)


async def serve(app: SupplierSimulatorApp, *, host: str, port: int) -> None:
    """Serve on aiohttp.web (kameng.simulators.supplier.server) until SIGINT or SIGTERM."""
    from kameng.simulators.supplier.server import serve as serve_http

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    merchants = ", ".join(f"{merchant.app_key} ({merchant.name or '-'}; notify {merchant.notify_url or 'none'})"
                          for merchant in app.simulator.merchants.values())

    def ready() -> None:
        sys.stdout.write(f"{READY_LINE}: gateway http://{host}:{port}/api/getway  admin "
                         f"http://{host}:{port}/admin/state  merchants: {merchants}\n")
        sys.stdout.flush()

    await serve_http(app, host=host, port=port, ready=ready, stop=stop)


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    simulator = simulator_from_options(options)
    asyncio.run(serve(SupplierSimulatorApp(simulator), host=options.host, port=options.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
