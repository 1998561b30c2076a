"""Helpers for the Open API v1 tests: a reseller with a funded wallet and a key, and signed requests through the
Django test client."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.test import Client
from django.test.client import RequestFactory

from kameng.accounts.models import User
from kameng.core.openapi_signing import openapi_signed_headers
from kameng.resellers.apikeys import api_key_create
from kameng.resellers.models import ApiKey, Reseller, ResellerStatus
from tests.factories import UserFactory, fund_wallet

BASE = "/openapi/v1"


@dataclass
class KeyHolder:
    reseller: Reseller
    key: ApiKey
    secret: str

    @property
    def user(self) -> User:
        return self.reseller.user


def reseller_with_key(*, funds: str | Decimal = "1000.00", status: str = ResellerStatus.ACTIVE,
                      ip_allowlist: str = "") -> KeyHolder:
    user = UserFactory.create()
    reseller = Reseller.objects.create(user=user, status=status)
    if Decimal(funds) > 0:
        fund_wallet(user, funds, reference=f"openapi-test-fund-{user.pk}")
    created = api_key_create(reseller_id=reseller.pk, name="测试密钥", ip_allowlist=ip_allowlist)
    return KeyHolder(reseller=reseller, key=created.key, secret=created.secret)


def headers_for(holder: KeyHolder, method: str, path_with_query: str, body: bytes = b"", *,
                timestamp: int | None = None, nonce: str | None = None, secret: str | None = None) -> dict[str, Any]:
    signed = openapi_signed_headers(key_id=holder.key.key_id, secret=secret or holder.secret, method=method,
                                    path_with_query=path_with_query, body=body,
                                    timestamp=int(time.time()) if timestamp is None else timestamp,
                                    nonce=nonce or secrets.token_hex(16))
    return {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in signed.items()}


def call(client: Client, holder: KeyHolder, method: str, path: str, payload: Any = None, *, raw: bytes | None = None,
         remote_addr: str = "127.0.0.1", **signing: Any) -> Any:
    """A signed request to `BASE + path`; `payload` is sent as JSON, `raw` as the body exactly."""
    body = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else b"")
    full = BASE + path
    meta = headers_for(holder, method, full, body, **signing)
    meta["REMOTE_ADDR"] = remote_addr
    if method == "GET":
        return client.get(full, **meta)
    return client.generic(method, full, data=body, content_type="application/json", **meta)


def request_for(holder: KeyHolder, method: str, path: str, body: bytes = b"", **signing: Any) -> Any:
    """A bare signed HttpRequest (for the verifier alone)."""
    meta = headers_for(holder, method, path, body, **signing)
    factory = RequestFactory()
    if method == "GET":
        return factory.get(path, **meta)
    return factory.generic(method, path, data=body, content_type="application/json", **meta)
