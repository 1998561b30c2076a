"""Sample tests (样品测试) of a new supplier's goods, recorded by staff before approval.

Staff create a SampleTest in the admin (offer, quantity, when ordered and delivered, valid or not, a note). For a
card-key offer they can take the samples from the supplier's own uploaded stock: `sample_test_take_keys` moves N
of its available keys of the offer's SKU to SOLD (no buyer order: `order` stays empty, the SampleTest keeps their
ids), at the cost each key was uploaded with, and sets the delivery time to the moment they were taken. Staff then
read the secrets on the sample test's admin page, try them, and record the result. The money for samples (the
platform buys them at cost) is settled with the supplier's other sold keys: each key carries supplier and cost.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.services import decrypt_secrets
from kameng.suppliers.models import OfferStockSource, SampleTest

MAX_SAMPLE_KEYS = 50


def sample_test_take_keys(*, sample_test_id: int, quantity: int) -> SampleTest:
    """Take `quantity` of the supplier's available keys of the offer's SKU as samples; all or none."""
    if not 1 <= quantity <= MAX_SAMPLE_KEYS:
        raise ApplicationError("样品数量应为 1–%(most)s", code="sample_quantity", params={"most": MAX_SAMPLE_KEYS})
    with transaction.atomic():
        test = SampleTest.objects.select_for_update().select_related("offer").filter(pk=sample_test_id).first()
        if test is None:
            raise NotFoundError("样品测试不存在", code="sample_test_not_found")
        offer = test.offer
        if offer.stock_source != OfferStockSource.CARD_KEYS:
            raise ConflictError("该报价不是卡密库存，不能从库存取样品", code="sample_not_card_keys")
        ids = list(CardKey.objects.select_for_update().filter(
            supplier_id=test.supplier_id, sku_id=offer.sku_id, status=CardKeyStatus.AVAILABLE)
            .order_by("pk").values_list("pk", flat=True)[:quantity])
        if len(ids) < quantity:
            raise ConflictError("供货商可售卡密不足：需要 %(wanted)s 张，只有 %(available)s 张",
                                code="sample_not_enough_keys", params={"wanted": quantity, "available": len(ids)})
        now = timezone.now()
        taken = CardKey.objects.filter(pk__in=ids, status=CardKeyStatus.AVAILABLE).update(
            status=CardKeyStatus.SOLD, sold_at=now)
        if taken != quantity:  # SQLite has no row locks: another claim came first
            raise ConflictError("卡密刚被占用，请重试", code="sample_keys_raced")
        CardKey.objects.filter(pk__in=ids, cost__isnull=True).update(cost=offer.price)
        cost = CardKey.objects.filter(pk__in=ids).aggregate(total=Sum("cost"))["total"] or Decimal("0.00")
        test.card_key_ids = [*test.card_key_ids, *ids]
        test.cost += cost
        if test.delivered_at is None:
            test.delivered_at = max(now, test.ordered_at)
        test.save(update_fields=["card_key_ids", "cost", "delivered_at"])
    return test


def sample_test_secrets(*, sample_test: SampleTest) -> list[str]:
    """The secrets of the keys taken as samples (staff only: the admin page of the test)."""
    rows = CardKey.objects.filter(pk__in=sample_test.card_key_ids).order_by("pk").values_list(
        "secret_ciphertext", flat=True)
    return decrypt_secrets([bytes(row) for row in rows])
