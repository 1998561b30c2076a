"""Reads for the AML review (kameng.payments.aml): the buyer's held top-ups, and the staff dossier of one review —
the verified identity (masked), the buyer's history and the addresses and devices linked to the account."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum

from kameng.accounts.identity import mask_id_number, mask_name
from kameng.accounts.models import RealNameStatus
from kameng.accounts.selectors import realname_of
from kameng.core.money import ZERO, money
from kameng.ledger.models import Account, AccountKind
from kameng.orders.models import Order
from kameng.payments.models import AmlReview, AmlReviewStatus, Payment, PaymentPurpose, PaymentStatus, Refund

HISTORY_ROWS = 20
LINKED_ACCOUNTS_MAX = 20


def wallet_held_balance(*, user_id: int) -> Decimal:
    """What the buyer has waiting in AML review (待审核充值): owed to them, not spendable."""
    balance = Account.objects.filter(owner_id=user_id, kind=AccountKind.WALLET_HOLD).values_list(
        "balance", flat=True).first()
    return balance if balance is not None else ZERO


def aml_reviews_of_user(*, user_id: int, limit: int = 20) -> list[AmlReview]:
    """The buyer's reviewed top-ups, newest first, with the refund of a rejected one."""
    return list(AmlReview.objects.filter(user_id=user_id).select_related("payment", "refund").order_by("-pk")[:limit])


def aml_review_of_payment(*, payment_id: int) -> AmlReview | None:
    return AmlReview.objects.filter(payment_id=payment_id).select_related("refund").first()


def aml_held_count() -> int:
    return AmlReview.objects.filter(status=AmlReviewStatus.HELD).count()


@dataclass
class AmlDossier:
    """What staff see beside a held top-up. Identity values are masked; device ids are short prefixes of their
    blind index (the id itself is never stored)."""

    identity_status: str
    snapshot_name: str
    snapshot_id_number: str
    current_name: str
    current_id_number: str
    topups: list[Payment]
    topup_count: int
    topup_total: Decimal
    orders: list[Order]
    order_count: int
    order_total: Decimal
    refunds: list[Refund]
    addresses: list[str]
    devices: list[str]
    linked_accounts: list[dict[str, Any]] = field(default_factory=list)


def _device_label(index: bytes | memoryview | None) -> str:
    return bytes(index).hex()[:12] if index else ""


def aml_review_dossier(*, review: AmlReview) -> AmlDossier:
    user_id = review.user_id
    current = realname_of(user_id=user_id)
    topups = Payment.objects.filter(user_id=user_id, purpose=PaymentPurpose.WALLET_TOPUP)
    paid = topups.filter(status=PaymentStatus.SUCCEEDED).aggregate(count=Count("pk"), total=Sum("amount"))
    orders = Order.objects.filter(buyer_id=user_id)
    order_totals = orders.aggregate(count=Count("pk"), total=Sum("total_amount"))
    refunds = Refund.objects.filter(Q(order__buyer_id=user_id) | Q(payment__user_id=user_id)).select_related(
        "order").order_by("-pk")[:HISTORY_ROWS]
    payment_addresses = set(Payment.objects.filter(user_id=user_id, client_ip__isnull=False).values_list(
        "client_ip", flat=True).distinct()[:50])
    order_addresses = set(orders.filter(client_ip__isnull=False).values_list("client_ip", flat=True).distinct()[:50])
    addresses = sorted(str(address) for address in payment_addresses | order_addresses)
    device_indexes = {bytes(index) for index in Payment.objects.filter(
        user_id=user_id, device_index__isnull=False).values_list("device_index", flat=True)[:200] if index}
    return AmlDossier(
        identity_status=(str(RealNameStatus(review.identity_status).label)
                         if review.identity_status in RealNameStatus.values else review.identity_status),
        snapshot_name=mask_name(str(review.identity_name)) if review.identity_name else "",
        snapshot_id_number=mask_id_number(str(review.identity_id_number)) if review.identity_id_number else "",
        current_name=current.masked_name or "", current_id_number=current.masked_id_number or "",
        topups=list(topups.select_related("channel").order_by("-pk")[:HISTORY_ROWS]),
        topup_count=paid["count"] or 0, topup_total=money(paid["total"] or ZERO),
        orders=list(orders.order_by("-pk")[:HISTORY_ROWS]),
        order_count=order_totals["count"] or 0, order_total=money(order_totals["total"] or ZERO),
        refunds=list(refunds), addresses=addresses,
        devices=sorted(_device_label(index) for index in device_indexes),
        linked_accounts=_linked_accounts(user_id, addresses, device_indexes))


def _linked_accounts(user_id: int, addresses: list[str], device_indexes: set[bytes]) -> list[dict[str, Any]]:
    """Other accounts that paid or ordered from the same addresses, or paid from the same devices."""
    linked: dict[int, dict[str, Any]] = {}

    def note(other_id: int, username: str, how: str) -> None:
        row = linked.setdefault(other_id, {"user_id": other_id, "username": username, "via": set()})
        row["via"].add(how)

    if addresses:
        for other_id, username, address in (Payment.objects.filter(client_ip__in=addresses).exclude(user_id=user_id)
                                             .values_list("user_id", "user__username", "client_ip")
                                             .distinct()[:LINKED_ACCOUNTS_MAX * 5]):
            note(other_id, username, f"IP {address}")
        for other_id, username, address in (Order.objects.filter(client_ip__in=addresses).exclude(buyer_id=user_id)
                                            .values_list("buyer_id", "buyer__username", "client_ip")
                                            .distinct()[:LINKED_ACCOUNTS_MAX * 5]):
            note(other_id, username, f"IP {address}")
    if device_indexes:
        for other_id, username, index in (Payment.objects.filter(device_index__in=list(device_indexes))
                                          .exclude(user_id=user_id).values_list("user_id", "user__username",
                                                                                "device_index")
                                          .distinct()[:LINKED_ACCOUNTS_MAX * 5]):
            note(other_id, username, f"设备 {_device_label(index)}")
    rows = sorted(linked.values(), key=lambda row: row["user_id"])[:LINKED_ACCOUNTS_MAX]
    return [{**row, "via": "、".join(sorted(row["via"]))} for row in rows]
