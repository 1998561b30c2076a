"""Reading after-sales requests: a buyer's own (我的售后, the order page, the API) and what staff see beside one
(the order's card keys, masked, and their state)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from kameng.after_sales.models import AfterSalesRequest
from kameng.core.ids import is_public_number
from kameng.core.masking import mask_secret
from kameng.inventory.models import CardKey
from kameng.inventory.services import decrypt_secrets


def after_sales_requests_of_buyer(*, buyer_id: int) -> QuerySet[AfterSalesRequest]:
    return AfterSalesRequest.objects.filter(buyer_id=buyer_id).select_related("order", "refund").order_by("-id")


def after_sales_requests_of_order(*, buyer_id: int, order_id: int) -> list[AfterSalesRequest]:
    """The buyer's requests about one order, newest first (the order page shows the newest, and earlier ones)."""
    return list(AfterSalesRequest.objects.filter(buyer_id=buyer_id, order_id=order_id)
                .select_related("refund").order_by("-id"))


def after_sales_request_of_buyer(*, buyer_id: int, number: str) -> AfterSalesRequest | None:
    if not is_public_number(number):
        return None
    return AfterSalesRequest.objects.filter(buyer_id=buyer_id, number=number).select_related("order").first()


@dataclass(frozen=True)
class KeyState:
    secret_masked: str
    status: str
    supplier: str
    sold_at: datetime | None
    expires_at: datetime | None


def order_card_keys_state(*, order_id: int) -> list[KeyState]:
    """The card keys delivered to an order as staff check them: masked (AB****YZ), their state and source."""
    keys = list(CardKey.objects.filter(order_id=order_id).select_related("supplier").order_by("id"))
    secrets = decrypt_secrets([bytes(key.secret_ciphertext) for key in keys])
    return [KeyState(secret_masked=mask_secret(secret), status=key.get_status_display(),
                     supplier=key.supplier.name if key.supplier is not None else "平台自营",
                     sold_at=key.sold_at, expires_at=key.expires_at)
            for key, secret in zip(keys, secrets, strict=True)]
