"""Staff review of suppliers (approve, reject, ask for more, suspend) and sample tests (样品测试)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from kameng.catalog.models import DeliveryKind
from kameng.core.errors import ApplicationError, ConflictError
from kameng.inventory.batches import card_key_import_submit
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.suppliers.models import (
    OfferStockSource,
    SampleResult,
    SampleTest,
    Supplier,
    SupplierReview,
    SupplierStatus,
)
from kameng.suppliers.onboarding import ReviewDecision, supplier_review, supplier_submit
from kameng.suppliers.sampling import sample_test_secrets, sample_test_take_keys
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory, UserFactory
from tests.suppliers.onboarding_helpers import complete_supplier, private_documents, upload

pytestmark = pytest.mark.django_db
__all__ = ["private_documents"]  # the autouse fixture

# --- review -----------------------------------------------------------------------------------------------------

def _pending() -> Supplier:
    supplier = complete_supplier()
    return supplier_submit(supplier=supplier)


def _passing_sample(supplier: Supplier, result: str = SampleResult.VALID) -> SampleTest:
    offer = SupplierOfferFactory.create(supplier=supplier)
    now = timezone.now()
    return SampleTest.objects.create(supplier=supplier, offer=offer, quantity=1, ordered_at=now - timedelta(seconds=42),
                                     delivered_at=now, result=result)


def test_approval_is_refused_without_a_passing_sample_test() -> None:
    supplier = _pending()
    staff = UserFactory.create(is_staff=True)
    _passing_sample(supplier, result=SampleResult.INVALID)

    with pytest.raises(ConflictError) as refused:
        supplier_review(supplier_id=supplier.pk, decision=ReviewDecision.APPROVE, reason="", staff_id=staff.pk)

    assert refused.value.code == "sample_test_required"
    supplier.refresh_from_db()
    assert supplier.status == SupplierStatus.PENDING_REVIEW
    assert SupplierReview.objects.count() == 1


def test_approval_after_a_passing_sample_test() -> None:
    supplier = _pending()
    staff = UserFactory.create(is_staff=True)
    test = _passing_sample(supplier)

    approved = supplier_review(supplier_id=supplier.pk, decision=ReviewDecision.APPROVE, reason="",
                               staff_id=staff.pk)

    assert approved.status == SupplierStatus.APPROVED
    assert approved.approved_at is not None
    assert test.delivery_seconds == 42
    review = SupplierReview.objects.order_by("-pk").first()
    assert review is not None
    assert (review.from_status, review.to_status, review.staff_id) == ("pending_review", "approved", staff.pk)


def test_the_sample_test_requirement_can_be_switched_off(settings: Settings) -> None:
    settings.KAMENG_SUPPLIER_SAMPLE_TEST_REQUIRED = False
    supplier = _pending()

    approved = supplier_review(supplier_id=supplier.pk, decision=ReviewDecision.APPROVE, reason="",
                               staff_id=UserFactory.create().pk)

    assert approved.status == SupplierStatus.APPROVED


def test_asking_for_more_shows_the_reason_and_lets_the_supplier_resubmit(client: Client) -> None:
    supplier = _pending()
    staff = UserFactory.create(is_staff=True)

    with pytest.raises(ApplicationError) as no_reason:
        supplier_review(supplier_id=supplier.pk, decision=ReviewDecision.NEEDS_MORE, reason=" ", staff_id=staff.pk)
    supplier_review(supplier_id=supplier.pk, decision=ReviewDecision.NEEDS_MORE, reason="营业执照不清晰，请重新上传",
                    staff_id=staff.pk)
    client.force_login(supplier.owner)
    body = client.get("/supplier/").content.decode()

    assert no_reason.value.code == "review_reason_required"
    assert "营业执照不清晰，请重新上传" in body
    supplier.refresh_from_db()
    assert supplier.status == SupplierStatus.NEEDS_MORE
    upload(supplier)
    assert client.post("/supplier/submit/").status_code == 302
    supplier.refresh_from_db()
    assert supplier.status == SupplierStatus.PENDING_REVIEW


def test_a_rejection_is_final_and_shows_its_reason(client: Client) -> None:
    supplier = _pending()
    staff = UserFactory.create(is_staff=True)

    supplier_review(supplier_id=supplier.pk, decision=ReviewDecision.REJECT, reason="资质不符", staff_id=staff.pk)
    client.force_login(supplier.owner)

    assert "资质不符" in client.get("/supplier/").content.decode()
    with pytest.raises(ConflictError):
        supplier_submit(supplier=Supplier.objects.get(pk=supplier.pk))
    with pytest.raises(ConflictError) as illegal:
        supplier_review(supplier_id=supplier.pk, decision=ReviewDecision.NEEDS_MORE, reason="再看看",
                        staff_id=staff.pk)
    assert illegal.value.code == "supplier_illegal_transition"
    assert Supplier.objects.get(pk=supplier.pk).status == SupplierStatus.REJECTED


@pytest.mark.parametrize("status", [SupplierStatus.DRAFT, SupplierStatus.NEEDS_MORE, SupplierStatus.APPROVED])
def test_only_a_supplier_in_review_is_reviewed(status: str) -> None:
    supplier = SupplierFactory.create(status=status)
    _passing_sample(supplier)

    with pytest.raises(ConflictError) as illegal:
        supplier_review(supplier_id=supplier.pk, decision=ReviewDecision.APPROVE, reason="",
                        staff_id=UserFactory.create().pk)

    assert illegal.value.code == "supplier_illegal_transition"
    assert Supplier.objects.get(pk=supplier.pk).status == status
    assert SupplierReview.objects.count() == 0


def test_staff_review_in_the_admin(admin_client: Client) -> None:
    supplier = _pending()
    _passing_sample(supplier)
    url = f"/admin/suppliers/supplier/{supplier.pk}/review/"

    refused = admin_client.post(url, {"decision": "reject", "reason": ""})
    page = admin_client.get(f"/admin/suppliers/supplier/{supplier.pk}/change/")
    done = admin_client.post(url, {"decision": "approve", "reason": ""})

    assert refused.status_code == 200
    assert "请填写原因" in refused.content.decode()
    assert page.status_code == 200
    assert "13812345678" not in page.content.decode()
    assert "138****5678" in page.content.decode()
    assert done.status_code == 302
    assert Supplier.objects.get(pk=supplier.pk).status == SupplierStatus.APPROVED


# --- sample keys ------------------------------------------------------------------------------------------------

def _card_key_offer(supplier: Supplier, keys: int) -> SampleTest:
    sku = SkuFactory.create(product__delivery_kind=DeliveryKind.CARD_KEY)
    offer = SupplierOfferFactory.create(supplier=supplier, sku=sku, price=Decimal("8.80"),
                                        stock_source=OfferStockSource.CARD_KEYS)
    card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="\n".join(f"S-{n:04d}" for n in range(keys)),
                           supplier_id=supplier.pk, cost=offer.price)
    return SampleTest.objects.create(supplier=supplier, offer=offer, quantity=2,
                                     ordered_at=timezone.now() - timedelta(seconds=5))


def test_staff_take_sample_keys_at_cost() -> None:
    supplier = _pending()
    test = _card_key_offer(supplier, keys=5)

    taken = sample_test_take_keys(sample_test_id=test.pk, quantity=2)

    assert len(taken.card_key_ids) == 2
    assert taken.cost == Decimal("17.60")
    assert taken.delivered_at is not None
    keys = CardKey.objects.filter(pk__in=taken.card_key_ids)
    assert {(key.status, key.order_id, key.supplier_id) for key in keys} == {(CardKeyStatus.SOLD, None, supplier.pk)}
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 3
    taken_secrets = sample_test_secrets(sample_test=taken)
    assert len(set(taken_secrets)) == 2
    assert set(taken_secrets) <= {f"S-{index:04d}" for index in range(5)}


def test_taking_more_sample_keys_than_in_stock_takes_none() -> None:
    supplier = _pending()
    test = _card_key_offer(supplier, keys=1)

    with pytest.raises(ConflictError) as refused:
        sample_test_take_keys(sample_test_id=test.pk, quantity=2)

    assert refused.value.code == "sample_not_enough_keys"
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 1
    test.refresh_from_db()
    assert (test.card_key_ids, test.cost) == ([], Decimal("0.00"))


def test_the_sample_keys_action_in_the_admin(admin_client: Client) -> None:
    supplier = _pending()
    test = _card_key_offer(supplier, keys=3)

    response = admin_client.post(f"/admin/suppliers/sampletest/{test.pk}/take-keys/", {"quantity": 2})
    page = admin_client.get(f"/admin/suppliers/sampletest/{test.pk}/change/")

    assert response.status_code == 302
    assert sum(f"S-{index:04d}" in page.content.decode() for index in range(3)) == 2  # the two taken, shown
    assert CardKey.objects.filter(status=CardKeyStatus.SOLD).count() == 2


def test_a_sample_test_is_of_an_offer_of_its_supplier(admin_client: Client) -> None:
    supplier = _pending()
    foreign_offer = SupplierOfferFactory.create()

    response = admin_client.post("/admin/suppliers/sampletest/add/", {
        "supplier": supplier.pk, "offer": foreign_offer.pk, "quantity": 1, "ordered_at_0": "2026-12-01",
        "ordered_at_1": "10:00:00", "result": SampleResult.VALID, "note": ""})

    assert response.status_code == 200
    assert "该报价不属于此供货商" in response.content.decode()
    assert SampleTest.objects.count() == 0


def test_staff_record_a_sample_test_in_the_admin(admin_client: Client) -> None:
    supplier = _pending()
    offer = SupplierOfferFactory.create(supplier=supplier)

    response = admin_client.post("/admin/suppliers/sampletest/add/", {
        "supplier": supplier.pk, "offer": offer.pk, "quantity": 2, "ordered_at_0": "2026-12-01",
        "ordered_at_1": "10:00:00", "delivered_at_0": "2026-12-01", "delivered_at_1": "10:00:09",
        "result": SampleResult.VALID, "note": "两张均可正常充值"})

    assert response.status_code == 302
    test = SampleTest.objects.get()
    assert test.recorded_by is not None
    assert (test.delivery_seconds, test.result, test.recorded_by.username) == (9, "valid", "admin")


def test_staff_suspend_an_approved_supplier_and_reinstate_it(admin_client: Client) -> None:
    supplier = SupplierFactory.create()
    _passing_sample(supplier)
    url = f"/admin/suppliers/supplier/{supplier.pk}/review/"

    wrong = admin_client.post(url, {"decision": "reject", "reason": "不行"})
    suspended = admin_client.post(url, {"decision": "suspend", "reason": "多次发货超时"})
    status_after_suspending = Supplier.objects.get(pk=supplier.pk).status
    reinstated = admin_client.post(url, {"decision": "approve", "reason": ""})

    assert wrong.status_code == 200  # not a choice for an approved supplier
    assert (suspended.status_code, reinstated.status_code) == (302, 302)
    assert status_after_suspending == SupplierStatus.SUSPENDED
    assert Supplier.objects.get(pk=supplier.pk).status == SupplierStatus.APPROVED
    assert list(SupplierReview.objects.order_by("pk").values_list("to_status", "reason")) == [
        ("suspended", "多次发货超时"), ("approved", "")]
