"""The admin's side of a chunked import: the <progress> bar, importing on a supplier's behalf, resuming a failed
batch from its page."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from kameng.inventory import import_pipeline
from kameng.inventory.batches import card_key_batch_run, card_key_import_submit
from kameng.inventory.import_store import StoreResult
from kameng.inventory.models import CardKey, CardKeyBatch, ImportStatus
from tests.factories import SkuFactory, SupplierFactory

pytestmark = pytest.mark.django_db


def _import_url(sku_id: int) -> str:
    return reverse("admin:inventory_cardkeybatch_import_sku", args=[sku_id])


def test_running_batch_shows_a_progress_element_that_polls(admin_client: Client, settings) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 1
    sku = SkuFactory.create()
    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="\n".join(f"P-{n}" for n in range(4)))
    CardKeyBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.RUNNING, total_lines=4, processed_lines=1)
    url = reverse("admin:inventory_cardkeybatch_progress", args=[batch.pk])

    fragment = admin_client.get(url, headers={"HX-Request": "true"}).content.decode()

    assert '<progress class="w-full" max="100" value="25"' in fragment
    assert f'hx-get="{url}"' in fragment
    assert "1 / 4 行（25%）" in fragment
    assert "style=" not in fragment  # nothing the storefront's CSP would refuse


def test_staff_import_on_a_suppliers_behalf(admin_client: Client) -> None:
    sku = SkuFactory.create()
    supplier = SupplierFactory.create()

    response = admin_client.post(_import_url(sku.pk), {"sku": sku.pk, "text": "V-1\nV-2", "supplier": supplier.pk,
                                                       "cost": "12.30"})

    assert response.status_code == 302
    batch = CardKeyBatch.objects.get()
    assert (batch.supplier_id, batch.cost, batch.imported_count) == (supplier.pk, Decimal("12.30"), 2)
    assert set(CardKey.objects.values_list("supplier_id", "cost")) == {(supplier.pk, Decimal("12.30"))}
    page = admin_client.get(reverse("admin:inventory_cardkeybatch_change", args=[batch.pk])).content.decode()
    assert supplier.name in page


def test_a_cost_without_a_supplier_is_refused_on_the_form(admin_client: Client) -> None:
    sku = SkuFactory.create()

    response = admin_client.post(_import_url(sku.pk), {"sku": sku.pk, "text": "V-1", "cost": "1.00"})

    assert response.status_code == 200
    assert "供货价只用于供货商的卡密" in response.content.decode()
    assert CardKeyBatch.objects.count() == 0


def test_a_failed_batch_page_explains_and_resumes(admin_client: Client, settings, monkeypatch: pytest.MonkeyPatch,
                                                  django_capture_on_commit_callbacks) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 1
    monkeypatch.setattr(import_pipeline, "CHUNK_SIZE", 2)
    sku = SkuFactory.create()
    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="F-1\nF-2\nF-3\nF-4\nF-5")
    real = import_pipeline.rows_store
    calls: list[int] = []

    def flaky(**kwargs: object) -> StoreResult:
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("could not extend file: No space left on device")
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(import_pipeline, "rows_store", flaky)
    with pytest.raises(OperationalError):
        card_key_batch_run(batch_id=batch.pk)
    change = reverse("admin:inventory_cardkeybatch_change", args=[batch.pk])

    page = admin_client.get(change).content.decode()
    assert "导入中断：OperationalError: could not extend file: No space left on device" in page
    assert "已处理 2 / 5 行，其中 2 条已入库" in page
    resume = reverse("admin:inventory_cardkeybatch_resume", args=[batch.pk])
    assert f'action="{resume}"' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(resume)

    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["已重新排队，从中断处继续导入；本页会自动刷新进度"]
    batch.refresh_from_db()
    assert (batch.status, batch.processed_lines, batch.imported_count, batch.duplicate_count) == (
        ImportStatus.DONE, 5, 5, 0)
    assert CardKey.objects.filter(batch=batch).count() == 5
    again = admin_client.post(resume)
    assert "只有失败且保留了导入内容的批次可以继续导入" in [str(m) for m in get_messages(again.wsgi_request)]
