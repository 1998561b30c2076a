#!/usr/bin/env python3
"""A small client for kameng's Open API v1 — standard library only, to copy into your own program.

    export KAMENG_DEMO_OPENAPI_KEY=kk_…  KAMENG_DEMO_OPENAPI_SECRET=…   # printed by `make demo`
    python examples/openapi_client.py products
    python examples/openapi_client.py balance
    python examples/openapi_client.py order --sku-id 1 --quantity 2 [--request-no R1] [--recharge-account 138…]
    python examples/openapi_client.py get K2612…            # by order number
    python examples/openapi_client.py get --request-no R1   # by your request number

The base URL comes from --base-url, else KAMENG_OPENAPI_BASE_URL, else http://127.0.0.1:8000; the key and secret
from --key/--secret, else KAMENG_DEMO_OPENAPI_KEY / KAMENG_DEMO_OPENAPI_SECRET.

Each request is signed: X-Kameng-Signature = lowercase hex HMAC-SHA256(secret, METHOD + "\\n" + PATH_WITH_QUERY +
"\\n" + TIMESTAMP + "\\n" + NONCE + "\\n" + lowercase hex SHA-256 of the raw body), with X-Kameng-Key,
X-Kameng-Timestamp (unix seconds) and X-Kameng-Nonce (16–64 characters, new for every request).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
API_PREFIX = "/openapi/v1"


def sign(*, secret: str, method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The X-Kameng-Signature of a request."""
    message = "\n".join((method.upper(), path_with_query, timestamp, nonce, hashlib.sha256(body).hexdigest()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed_headers(*, key: str, secret: str, method: str, path_with_query: str, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    nonce = secrets.token_hex(16)
    return {"X-Kameng-Key": key, "X-Kameng-Timestamp": timestamp, "X-Kameng-Nonce": nonce,
            "X-Kameng-Signature": sign(secret=secret, method=method, path_with_query=path_with_query,
                                       timestamp=timestamp, nonce=nonce, body=body)}


class Client:
    def __init__(self, base_url: str, key: str, secret: str, timeout: float = 30) -> None:
        parts = urllib.parse.urlsplit(base_url.rstrip("/"))
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.prefix = parts.path.rstrip("/")  # a site served under a path prefix
        self.key, self.secret, self.timeout = key, secret, timeout

    def request(self, method: str, path: str, payload: Any = None,
                query: dict[str, str] | None = None) -> tuple[int, Any]:
        """(HTTP status, decoded JSON answer); error answers are {"code", "message"}."""
        path_with_query = self.prefix + API_PREFIX + path
        if query:
            path_with_query += "?" + urllib.parse.urlencode(query)
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        headers = signed_headers(key=self.key, secret=self.secret, method=method, path_with_query=path_with_query,
                                 body=body)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.origin + path_with_query, data=body if payload is not None else None,
                                         headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - the user's URL
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, {"code": "http_error", "message": text.decode(errors="replace")[:500]}

    def products(self) -> tuple[int, Any]:
        return self.request("GET", "/products")

    def balance(self) -> tuple[int, Any]:
        return self.request("GET", "/balance")

    def order(self, *, sku_id: int, quantity: int, request_no: str, recharge_account: str | None = None,
              notify_url: str | None = None) -> tuple[int, Any]:
        payload: dict[str, Any] = {"request_no": request_no, "sku_id": sku_id, "quantity": quantity}
        if recharge_account is not None:
            payload["recharge_account"] = recharge_account
        if notify_url is not None:
            payload["notify_url"] = notify_url
        return self.request("POST", "/orders", payload)

    def get(self, *, order_no: str | None = None, request_no: str | None = None) -> tuple[int, Any]:
        if order_no:
            return self.request("GET", "/orders/" + urllib.parse.quote(order_no, safe=""))
        return self.request("GET", "/orders", query={"request_no": request_no or ""})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="kameng Open API v1 example client")
    parser.add_argument("--base-url", default=os.environ.get("KAMENG_OPENAPI_BASE_URL", DEFAULT_BASE_URL))
    parser.add_argument("--key", default=os.environ.get("KAMENG_DEMO_OPENAPI_KEY", ""))
    parser.add_argument("--secret", default=os.environ.get("KAMENG_DEMO_OPENAPI_SECRET", ""))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("products", help="SKUs on sale at your price")
    commands.add_parser("balance", help="your wallet balance")
    order = commands.add_parser("order", help="buy, paid from your wallet")
    order.add_argument("--sku-id", type=int, required=True)
    order.add_argument("--quantity", type=int, default=1)
    order.add_argument("--request-no", default=None, help="your request number (default: a new random one)")
    order.add_argument("--recharge-account", default=None, help="direct top-ups: the account or phone to credit")
    order.add_argument("--notify-url", default=None)
    get = commands.add_parser("get", help="one of your orders, by order number or --request-no")
    get.add_argument("order_no", nargs="?")
    get.add_argument("--request-no", default=None)
    options = parser.parse_args(argv)
    if not options.key or not options.secret:
        parser.error("set KAMENG_DEMO_OPENAPI_KEY and KAMENG_DEMO_OPENAPI_SECRET (or pass --key and --secret)")
    client = Client(options.base_url, options.key, options.secret)
    if options.command == "products":
        status, body = client.products()
    elif options.command == "balance":
        status, body = client.balance()
    elif options.command == "order":
        status, body = client.order(sku_id=options.sku_id, quantity=options.quantity,
                                    request_no=options.request_no or "ex-" + secrets.token_hex(8),
                                    recharge_account=options.recharge_account, notify_url=options.notify_url)
    else:
        if not options.order_no and not options.request_no:
            parser.error("get needs an order number or --request-no")
        status, body = client.get(order_no=options.order_no, request_no=options.request_no)
    print(f"HTTP {status}")
    print(json.dumps(body, ensure_ascii=False, indent=2))
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
