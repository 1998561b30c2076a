"""Card keys bought from an upstream supplier for one order (上游卡密): stored as the order's delivered keys.

A card-key order that the platform's stock cannot fill may be bought from an upstream (kameng.suppliers.topup,
a card attempt); the secrets the upstream answers are stored here exactly as an import stores keys — normalised
(`imports.normalise_secret`), AES-256-GCM encrypted with the same context, fingerprinted with the same keyed HMAC —
and, like a supplier's uploaded keys, with the supplier and its cost per key. They are SOLD to the order at once, so
the order page, the API and the aftercare (settlement by `CardKey.supplier` / `cost`) read them as any delivered key.

All or nothing: the order gets its keys only when the upstream answered exactly `expected` secrets, every one
valid, distinct and not already on the platform (the fingerprint is unique across every SKU and supplier, as for
imports). Otherwise nothing is delivered and the secrets that could be stored are kept withdrawn (VOID, no order:
never sold, shown to nobody, but their fingerprints are taken so that they can never be delivered later either),
for staff to settle with the supplier. The caller fails the attempt.

Runs in the caller's transaction (which holds the order's lock). Each insert is in a savepoint: a key stored by a
concurrent transaction at the same moment makes the insert fail there, and the look-up after it counts that key
as a duplicate. Rows go in fingerprint order, as imports insert, so two writers cannot deadlock on each other's keys.
Secrets are never logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from kameng.core.crypto import keyring
from kameng.inventory.import_pipeline import FINGERPRINT_CONTEXT
from kameng.inventory.imports import MAX_SECRET_LENGTH, normalise_secret
from kameng.inventory.models import SECRET_CONTEXT, CardKey, CardKeyStatus

INSERT_ATTEMPTS = 3


@dataclass(frozen=True)
class UpstreamKeys:
    """What became of an upstream's secrets for one order."""

    delivered: int  # keys stored SOLD to the order (`expected`, or 0)
    received: int  # secrets in the answer
    invalid: int  # empty or longer than an import accepts
    duplicates: int  # already on the platform, or repeated within the answer
    withdrawn: int  # stored VOID without an order (not delivered), for staff

    @property
    def is_delivered(self) -> bool:
        return self.delivered > 0

    def problem(self, *, expected: int) -> str:
        """Why nothing was delivered, for staff (no secret in it)."""
        parts = [f"上游返回 {self.received} 张卡密，订单需要 {expected} 张"]
        if self.duplicates:
            parts.append(f"其中 {self.duplicates} 张与平台已有卡密重复")
        if self.invalid:
            parts.append(f"{self.invalid} 张无效")
        if self.withdrawn:
            parts.append(f"{self.withdrawn} 张已作废留存待核对")
        return "，".join(parts)


def card_keys_store_from_upstream(*, order_id: int | None, sku_id: int, secrets: Sequence[str], expected: int,
                                  supplier_id: int, cost: Decimal | None) -> UpstreamKeys:
    """Store the upstream's secrets as the order's `expected` sold keys (supplier and cost per key), or — when they
    are not exactly that many valid, new, distinct secrets, or `order_id` is None (the order no longer waits for
    them) — store what can be stored withdrawn (VOID, no order) and deliver nothing. In the caller's transaction."""
    ring = keyring()
    context = SECRET_CONTEXT.encode()
    fresh: dict[bytes, bytes] = {}  # fingerprint → plaintext
    invalid = repeats = 0
    for raw in secrets:
        secret = normalise_secret(str(raw))
        if not secret or len(secret) > MAX_SECRET_LENGTH:
            invalid += 1
            continue
        plaintext = secret.encode()
        mark = ring.fingerprint(plaintext, context=FINGERPRINT_CONTEXT)
        if mark in fresh:
            repeats += 1
            continue
        fresh[mark] = plaintext
    rows = sorted(fresh.items())
    tokens = ring.encrypt_many([plaintext for _, plaintext in rows], context=context)
    stored = list(zip([mark for mark, _ in rows], tokens, strict=True))
    complete = order_id is not None and not invalid and not repeats and len(stored) == expected
    if complete:
        taken = _taken([mark for mark, _ in stored])
        if not taken and _insert(stored, sku_id=sku_id, order_id=order_id, supplier_id=supplier_id, cost=cost):
            return UpstreamKeys(delivered=expected, received=len(secrets), invalid=0, duplicates=0, withdrawn=0)
    withdrawn, duplicates = _withdraw(stored, sku_id=sku_id, supplier_id=supplier_id, cost=cost)
    return UpstreamKeys(delivered=0, received=len(secrets), invalid=invalid, duplicates=duplicates + repeats,
                        withdrawn=withdrawn)


def _taken(marks: list[bytes]) -> set[bytes]:
    """The fingerprints among these already on the platform (any SKU, any supplier, any state)."""
    if not marks:
        return set()
    return {bytes(mark) for mark in CardKey.objects.filter(fingerprint__in=marks).values_list("fingerprint", flat=True)}


def _insert(rows: list[tuple[bytes, bytes]], *, sku_id: int, order_id: int | None, supplier_id: int,
            cost: Decimal | None) -> bool:
    """Insert the rows (sold to the order, or VOID without one) in a savepoint; False when one of them was taken
    meanwhile (nothing inserted)."""
    now = timezone.now()
    status = CardKeyStatus.SOLD if order_id is not None else CardKeyStatus.VOID
    try:
        with transaction.atomic():
            CardKey.objects.bulk_create([
                CardKey(sku_id=sku_id, status=status, secret_ciphertext=token, fingerprint=mark, order_id=order_id,
                        supplier_id=supplier_id, cost=cost, created_at=now,
                        sold_at=now if order_id is not None else None)
                for mark, token in rows])
    except IntegrityError:
        return False
    return True


def _withdraw(rows: list[tuple[bytes, bytes]], *, sku_id: int, supplier_id: int,
              cost: Decimal | None) -> tuple[int, int]:
    """Store the rows not yet on the platform as VOID keys without an order; (stored, duplicates)."""
    duplicates = 0
    remaining = list(rows)
    for _attempt in range(INSERT_ATTEMPTS):
        taken = _taken([mark for mark, _ in remaining])
        duplicates += len(taken)
        remaining = [(mark, token) for mark, token in remaining if mark not in taken]
        if not remaining:
            return 0, duplicates
        if _insert(remaining, sku_id=sku_id, order_id=None, supplier_id=supplier_id, cost=cost):
            return len(remaining), duplicates
    return 0, duplicates + len(remaining)  # kept colliding: nothing kept, all counted as duplicates
