"""What the Open API benchmarks share: seeding resellers with keys through the real services, signing requests the
way examples/openapi_client.py does (ahead of the run, so that the load generator spends nothing on HMACs), and
the database checks after a run. The server, the database and the CPU accounting come from bench/checkout.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

ORDERS_PATH = "/openapi/v1/orders"


@dataclass
class KeyPair:
    user_id: int
    key_id: str
    secret: str


def sign(*, secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = "\n".join((method, path, timestamp, nonce, hashlib.sha256(body).hexdigest()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed_order(key: KeyPair, *, sku_id: int, request_no: str, quantity: int = 1) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one signed POST /orders (timestamp now: send it within 300 s)."""
    body = json.dumps({"request_no": request_no, "sku_id": sku_id, "quantity": quantity}).encode()
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    return body, {"Content-Type": "application/json", "X-Kameng-Key": key.key_id, "X-Kameng-Timestamp": timestamp,
                  "X-Kameng-Nonce": nonce,
                  "X-Kameng-Signature": sign(secret=key.secret, method="POST", path=ORDERS_PATH, timestamp=timestamp,
                                             nonce=nonce, body=body)}


def seed_sku(*, keys: int, price: Decimal, name: str) -> tuple[int, int, int]:
    """A card-key SKU with `keys` keys imported through the real import service: (sku id, lowest key id, highest)."""
    from kameng.catalog.models import Category, Product, Sku
    from kameng.inventory.imports import card_key_batch_create, card_keys_import
    from kameng.inventory.models import CardKey

    category = Category.objects.create(name="代理压测", slug=f"bench-openapi-{secrets.token_hex(3)}")
    product = Product.objects.create(category=category, name=name, max_quantity=10)
    sku = Sku.objects.create(product=product, name="10 元", face_value=Decimal("10.00"), price=price)
    run = secrets.token_hex(4)
    batch = card_key_batch_create(sku_id=sku.pk, created_by_id=None, source_name="bench")
    for offset in range(0, keys, 100_000):
        card_keys_import(batch=batch, text="\n".join(f"OA-{run}-{index:08d}-{secrets.token_hex(6)}"
                                                     for index in range(offset, min(keys, offset + 100_000))))
    ids = CardKey.objects.filter(sku=sku).order_by("id").values_list("id", flat=True)
    return sku.pk, ids.first() or 0, ids.last() or 0


def seed_resellers(*, count: int, funds: Decimal) -> list[KeyPair]:
    """`count` approved resellers, each with a funded wallet (one journal each) and an API key."""
    from kameng.accounts.models import User
    from kameng.ledger.models import AccountKind, JournalKind
    from kameng.ledger.services import credit, debit, journal_post, system_account_id, wallet_account_id
    from kameng.resellers.apikeys import api_key_id_new, api_key_secret_new
    from kameng.resellers.models import ApiKey, Reseller, ResellerStatus

    run = secrets.token_hex(4)
    users = User.objects.bulk_create([User(username=f"oa{run}_{index}", password="!") for index in range(count)])
    resellers = Reseller.objects.bulk_create([Reseller(user=user, status=ResellerStatus.ACTIVE) for user in users])
    pairs = [KeyPair(user_id=user.pk, key_id=api_key_id_new(), secret=api_key_secret_new()) for user in users]
    ApiKey.objects.bulk_create([ApiKey(reseller=reseller, key_id=pair.key_id, secret=pair.secret, name="bench")
                                for reseller, pair in zip(resellers, pairs, strict=True)])
    clearing = system_account_id(kind=AccountKind.GATEWAY_CLEARING, suffix="bench")
    for user in users:
        journal_post(kind=JournalKind.ADJUSTMENT, reference=f"bench-openapi-fund-{user.pk}",
                     legs=[debit(clearing, funds), credit(wallet_account_id(user_id=user.pk), funds)])
    return pairs


def database_facts(*, sku_id: int) -> dict[str, Any]:
    """Counted in SQL after a run: orders, sold keys, duplicates, the wallets, the ledger check."""
    from django.db import connection

    from kameng.ledger.selectors import ledger_problems

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), coalesce(sum(quantity), 0), coalesce(sum(total_amount), 0) "
                       "FROM orders_order WHERE sku_id = %s AND status = 'delivered'", [sku_id])
        orders, quantity, spent = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM orders_order WHERE sku_id = %s AND status <> 'delivered'", [sku_id])
        (other_orders,) = cursor.fetchone()
        cursor.execute("SELECT count(*), count(DISTINCT id), count(DISTINCT order_id) FROM inventory_cardkey "
                       "WHERE sku_id = %s AND status = 'sold'", [sku_id])
        sold, distinct_sold, orders_with_keys = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM resellers_openapiorder r JOIN orders_order o ON o.id = r.order_id "
                       "WHERE o.sku_id = %s", [sku_id])
        (recorded,) = cursor.fetchone()
    problems = ledger_problems()
    connection.close()
    return {"orders": orders, "quantity": quantity, "spent": Decimal(spent), "other_orders": other_orders,
            "sold": sold, "distinct_sold": distinct_sold, "orders_with_keys": orders_with_keys,
            "recorded": recorded, "ledger_problems": [f"{p.what}: {p.detail}" for p in problems[:5]]}


def print_checks(checks: dict[str, bool]) -> bool:
    for name, passed in checks.items():
        print(f"  [{'ok' if passed else 'FAILED'}] {name}")
    return all(checks.values())
