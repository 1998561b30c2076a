"""Writes on card-key stock: claiming keys for orders, releasing them, selling reserved ones.

Claiming never uses the naive `ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED` from the head of the queue: on a hot
product every buyer would fight over the same first rows. The scan starts at a random id inside the SKU's range
of available keys and wraps to the start when it finds too few, so concurrent buyers mostly land on different rows.
The `status = 'available'` guard in the UPDATE stays the source of truth on every backend.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Max, Min, Q, QuerySet
from django.utils import timezone

from kameng.core.crypto import keyring
from kameng.core.errors import ConflictError
from kameng.core.sql import json_rows
from kameng.inventory.models import SECRET_CONTEXT, CardKey, CardKeyStatus

BOUNDS_TTL_SECONDS = 5.0
_bounds: dict[int, tuple[int, int, float]] = {}


class SoldOutError(ConflictError):
    pass


def _sold_out(available: int) -> SoldOutError:
    if available == 0:
        return SoldOutError("已售罄", code="sold_out", extra={"available": 0})
    return SoldOutError("库存不足，仅剩 %(available)s 件", code="sold_out", extra={"available": available},
                        params={"available": available})


def _available(sku_id: int) -> QuerySet[CardKey]:
    now = timezone.now()
    return CardKey.objects.filter(sku_id=sku_id, status=CardKeyStatus.AVAILABLE).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def _random_start(sku_id: int) -> int:
    cached = _bounds.get(sku_id)
    if cached is None or time.monotonic() - cached[2] > BOUNDS_TTL_SECONDS:
        row = CardKey.objects.filter(sku_id=sku_id, status=CardKeyStatus.AVAILABLE).aggregate(
            low=Min("id"), high=Max("id"))
        cached = (row["low"] or 0, row["high"] or 0, time.monotonic())
        _bounds[sku_id] = cached
    low, high, _ = cached
    return random.randint(low, high) if high > low else low  # noqa: S311 - spreading load, not security


def card_keys_claim(*, sku_id: int, order_id: int, quantity: int, sell: bool) -> list[tuple[int, bytes]]:
    """Claim `quantity` available keys of the SKU for the order, in the caller's transaction.

    `sell=True` marks them sold (paid checkout), otherwise reserved (unpaid order). Returns (id, ciphertext)
    pairs in id order. Raises `SoldOutError` (nothing claimed) when stock is short.
    """
    status = CardKeyStatus.SOLD if sell else CardKeyStatus.RESERVED
    start = _random_start(sku_id)
    if connection.vendor == "postgresql":
        claimed = _claim_postgresql(sku_id, order_id, quantity, status, start)
    else:
        claimed = _claim_portable(sku_id, order_id, quantity, status, start)
    if len(claimed) < quantity:
        _bounds.pop(sku_id, None)
        if claimed:
            # Give a partial claim back here rather than rely on the caller rolling back: "sold out" claims nothing.
            CardKey.objects.filter(id__in=[pk for pk, _ in claimed], order_id=order_id).update(
                status=CardKeyStatus.AVAILABLE, order_id=None, sold_at=None)
        raise _sold_out(_available(sku_id).count() if not claimed else len(claimed))
    # In id order, as the order page and a replayed request list them (the scan may have wrapped around).
    return sorted(claimed)


_PG_CLAIM = """
UPDATE inventory_cardkey SET status = %(status)s, order_id = %(order_id)s, sold_at = %(now)s
WHERE status = 'available' AND id IN (
    SELECT id FROM inventory_cardkey
    WHERE sku_id = %(sku_id)s AND status = 'available' AND {range}
      AND (expires_at IS NULL OR expires_at > %(now)s)
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, secret_ciphertext
"""


def _claim_postgresql(sku_id: int, order_id: int, quantity: int, status: str, start: int) -> list[tuple[int, bytes]]:
    # One round trip: lock candidates past a random start, skipping rows other buyers hold, and take them.
    params: dict[str, Any] = {
        "status": status, "order_id": order_id, "now": timezone.now(), "sku_id": sku_id, "start": start}
    claimed: list[tuple[int, bytes]] = []
    with connection.cursor() as cursor:
        for bound in ("id >= %(start)s", "id < %(start)s"):
            params["limit"] = quantity - len(claimed)
            cursor.execute(_PG_CLAIM.format(range=bound), params)
            claimed.extend((row[0], bytes(row[1])) for row in cursor.fetchall())
            if len(claimed) >= quantity:
                break
    return claimed


_PG_CLAIM_MANY = """
WITH wanted AS (
    SELECT want.order_id, row_number() OVER (ORDER BY want.position, copy.n) AS slot
    FROM json_to_recordset(%(wants)s::json) AS want(position integer, order_id bigint, quantity integer)
    CROSS JOIN LATERAL generate_series(1, want.quantity) AS copy(n)
), picked AS (
    SELECT candidate.id, row_number() OVER (ORDER BY candidate.id) AS slot FROM (
        SELECT id FROM inventory_cardkey
        WHERE sku_id = %(sku_id)s AND status = 'available' AND {range}
          AND (expires_at IS NULL OR expires_at > %(now)s)
        ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) AS candidate
)
UPDATE inventory_cardkey AS card SET status = %(status)s, order_id = wanted.order_id, sold_at = %(now)s
FROM picked JOIN wanted USING (slot)
WHERE card.id = picked.id AND card.status = 'available'
RETURNING card.id, card.order_id, card.secret_ciphertext
"""


def card_keys_claim_many(*, sku_id: int, wants: Sequence[tuple[int, int]]) -> dict[int, list[tuple[int, bytes]]] | None:
    """PostgreSQL: sell keys of one SKU to many paid orders at once, `wants` being (order id, quantity) pairs.

    The same claim as `card_keys_claim` — a scan from a random start that skips rows other buyers hold, wrapping
    once, guarded by `status = 'available'` — in one statement for all the orders (two when the scan wraps).
    Returns each order's (id, ciphertext) pairs in id order, or None when the stock cannot cover every order:
    some keys are claimed by then, so the caller must roll its transaction back.
    """
    now = timezone.now()
    params: dict[str, Any] = {"status": CardKeyStatus.SOLD, "now": now, "sku_id": sku_id,
                              "start": _random_start(sku_id)}
    claimed: dict[int, list[tuple[int, bytes]]] = {order_id: [] for order_id, _ in wants}
    remaining = list(wants)
    with connection.cursor() as cursor:
        for bound in ("id >= %(start)s", "id < %(start)s"):
            params["wants"] = json_rows({"position": position, "order_id": order_id, "quantity": quantity}
                                        for position, (order_id, quantity) in enumerate(remaining))
            params["limit"] = sum(quantity for _, quantity in remaining)
            cursor.execute(_PG_CLAIM_MANY.format(range=bound), params)
            for key_id, order_id, secret in cursor.fetchall():
                claimed[order_id].append((key_id, bytes(secret)))
            remaining = [(order_id, quantity - len(claimed[order_id])) for order_id, quantity in wants
                         if len(claimed[order_id]) < quantity]
            if not remaining:
                return {order_id: sorted(keys) for order_id, keys in claimed.items()}
    _bounds.pop(sku_id, None)
    return None


def _claim_portable(sku_id: int, order_id: int, quantity: int, status: str, start: int) -> list[tuple[int, bytes]]:
    now = timezone.now()
    claimed: list[int] = []
    for bound in (Q(id__gte=start), Q(id__lt=start)):
        for _attempt in range(5):
            need = quantity - len(claimed)
            if need <= 0:
                break
            candidates = list(
                _available(sku_id).filter(bound).order_by("id").select_for_update(skip_locked=True)
                .values_list("id", flat=True)[:need]
            )
            if not candidates:
                break
            updated = CardKey.objects.filter(id__in=candidates, status=CardKeyStatus.AVAILABLE).update(
                status=status, order_id=order_id, sold_at=now)
            if updated == len(candidates):
                claimed.extend(candidates)
            else:  # another writer took some of them between our read and our update: keep what we got
                claimed.extend(CardKey.objects.filter(id__in=candidates, order_id=order_id).values_list(
                    "id", flat=True))
    rows = CardKey.objects.filter(id__in=claimed).values_list("id", "secret_ciphertext")
    return [(pk, bytes(secret)) for pk, secret in rows]


def card_keys_sell_reserved(*, order_id: int) -> int:
    """Turn the order's reserved keys into sold ones; returns how many."""
    return CardKey.objects.filter(order_id=order_id, status=CardKeyStatus.RESERVED).update(
        status=CardKeyStatus.SOLD, sold_at=timezone.now())


def card_keys_release(*, order_id: int) -> int:
    """Give an unpaid order's reserved keys back to stock; returns how many."""
    return CardKey.objects.filter(order_id=order_id, status=CardKeyStatus.RESERVED).update(
        status=CardKeyStatus.AVAILABLE, order_id=None, sold_at=None)


def card_keys_return_undelivered(*, order_id: int) -> int:
    """Give back to stock every key an order holds but never delivered: its reserved keys and those a failed
    delivery had already marked sold before the rest ran out (no secret was shown: only delivered orders show
    theirs). Returns how many."""
    return CardKey.objects.filter(
        order_id=order_id, status__in=[CardKeyStatus.RESERVED, CardKeyStatus.SOLD],
    ).update(status=CardKeyStatus.AVAILABLE, order_id=None, sold_at=None)


def card_keys_void(*, card_key_ids: Sequence[int]) -> int:
    """Withdraw available keys from sale (staff action). Reserved and sold keys are left alone."""
    return CardKey.objects.filter(id__in=card_key_ids, status=CardKeyStatus.AVAILABLE).update(
        status=CardKeyStatus.VOID)


def decrypt_secrets(ciphertexts: Sequence[bytes]) -> list[str]:
    ring = keyring()
    context = SECRET_CONTEXT.encode()
    return [ring.decrypt(token, context=context).decode() for token in ciphertexts]
