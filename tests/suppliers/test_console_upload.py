from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from pytest_django.fixtures import Settings

from kameng.catalog.models import DeliveryKind
from kameng.inventory.imports import card_keys_import
from kameng.inventory.models import CardKey, CardKeyBatch, CardKeyStatus
from kameng.suppliers.models import OfferStockSource, SupplierOffer, SupplierStatus
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory

pytestmark = pytest.mark.django_db


def _card_key_offer(status: str = SupplierStatus.APPROVED, price: str = "8.50") -> SupplierOffer:
    sku = SkuFactory.create(product__delivery_kind=DeliveryKind.CARD_KEY)
    return SupplierOfferFactory.create(supplier=SupplierFactory.create(status=status), sku=sku,
                                       price=Decimal(price), stock_source=OfferStockSource.CARD_KEYS)


def test_pasted_keys_are_stored_as_the_suppliers_at_its_price(client: Client) -> None:
    offer = _card_key_offer()
    client.force_login(offer.supplier.owner)

    response = client.post(f"/supplier/offers/{offer.pk}/keys/", {"text": "AAAA-0001\nAAAA-0002\n\nAAAA-0003\n"},
                           follow=True)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-imported="3"' in body
    assert "导入 3 张；重复（平台已有，已拒绝）0 张；无效行 0 行" in body
    keys = CardKey.objects.all()
    assert {(key.sku_id, key.supplier_id, key.cost, key.status) for key in keys} == {
        (offer.sku_id, offer.supplier_id, Decimal("8.50"), CardKeyStatus.AVAILABLE)}
    assert keys.count() == 3
    batch = CardKeyBatch.objects.get()
    assert (batch.supplier_id, batch.cost, batch.created_by_id) == (offer.supplier_id, Decimal("8.50"),
                                                                    offer.supplier.owner_id)
    assert "可售库存 3 张" in client.get(f"/supplier/offers/{offer.pk}/keys/").content.decode()


def test_duplicates_anywhere_on_the_platform_are_refused_with_a_count(client: Client) -> None:
    offer = _card_key_offer()
    platform_sku = SkuFactory.create()
    batch = CardKeyBatch.objects.create(sku=platform_sku)
    card_keys_import(batch=batch, text="DUP-0001\nDUP-0002")  # the platform's own stock
    other = _card_key_offer()
    client.force_login(other.supplier.owner)
    client.post(f"/supplier/offers/{other.pk}/keys/", {"text": "DUP-0003"})  # another supplier's
    client.force_login(offer.supplier.owner)

    response = client.post(f"/supplier/offers/{offer.pk}/keys/",
                           {"text": "DUP-0001\nDUP-0002\nDUP-0003\nNEW-0004\nNEW-0004"}, follow=True)

    assert 'data-duplicates="4"' in response.content.decode()
    assert "导入 1 张；重复（平台已有，已拒绝）4 张" in response.content.decode()
    assert CardKey.objects.filter(supplier=offer.supplier).count() == 1
    assert CardKey.objects.count() == 4


def test_a_csv_file_is_imported(client: Client) -> None:
    offer = _card_key_offer()
    client.force_login(offer.supplier.owner)
    csv = SimpleUploadedFile("keys.csv", "卡号,密码\nC001,P001\nC002,P002\n".encode("gbk"))

    response = client.post(f"/supplier/offers/{offer.pk}/keys/", {"file": csv}, follow=True)

    assert 'data-imported="2"' in response.content.decode()
    assert CardKey.objects.filter(supplier=offer.supplier).count() == 2


def test_nothing_to_import_is_a_clear_error(client: Client) -> None:
    offer = _card_key_offer()
    client.force_login(offer.supplier.owner)

    response = client.post(f"/supplier/offers/{offer.pk}/keys/", {"text": "  \n"}, follow=True)

    assert response.status_code == 400
    assert "没有可导入的内容" in response.content.decode()
    assert CardKeyBatch.objects.count() == 0


def test_keys_are_not_uploaded_for_an_upstream_offer(client: Client) -> None:
    offer = SupplierOfferFactory.create(stock_source=OfferStockSource.UPSTREAM)
    client.force_login(offer.supplier.owner)

    page = client.get(f"/supplier/offers/{offer.pk}/keys/").content.decode()
    response = client.post(f"/supplier/offers/{offer.pk}/keys/", {"text": "K-1"}, follow=True)

    assert "该报价的库存来源不是卡密，不能上传卡密" in page
    assert response.status_code == 409
    assert CardKey.objects.count() == 0


@pytest.mark.parametrize("status", [SupplierStatus.DRAFT, SupplierStatus.NEEDS_MORE, SupplierStatus.SUSPENDED])
def test_only_an_approved_supplier_uploads_keys(client: Client, status: str) -> None:
    offer = _card_key_offer(status=status)
    client.force_login(offer.supplier.owner)

    page = client.get(f"/supplier/offers/{offer.pk}/keys/").content.decode()
    response = client.post(f"/supplier/offers/{offer.pk}/keys/", {"text": "K-1"}, follow=True)

    assert "提交审核后才能创建报价、上传卡密" in page
    assert response.status_code == 409
    assert CardKey.objects.count() == 0
    assert CardKeyBatch.objects.count() == 0


def test_a_large_upload_queued_for_the_worker_keeps_supplier_and_cost(
        client: Client, settings: Settings,
        django_capture_on_commit_callbacks: Callable[..., AbstractContextManager[Any]]) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 2
    offer = _card_key_offer(price="3.30")
    client.force_login(offer.supplier.owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/supplier/offers/{offer.pk}/keys/", {"text": "Q-1\nQ-2\nQ-3\nQ-4\nQ-5"},
                               follow=True)

    assert "已排队导入" in response.content.decode()
    assert CardKeyBatch.objects.get().imported_count == 5
    assert set(CardKey.objects.values_list("supplier_id", "cost")) == {(offer.supplier_id, Decimal("3.30"))}
    assert CardKey.objects.count() == 5


def test_an_upload_redirects_so_a_reload_does_not_upload_again(client: Client) -> None:
    offer = _card_key_offer()
    client.force_login(offer.supplier.owner)

    response = client.post(f"/supplier/offers/{offer.pk}/keys/", {"text": "R-0001\nR-0002"})
    again = client.get(response["Location"])

    assert response.status_code == 302
    assert 'data-imported="2"' in again.content.decode()
    assert CardKey.objects.filter(supplier=offer.supplier).count() == 2
