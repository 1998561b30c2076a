"""Staff set a supplier's connector config in the admin without ever seeing its secrets, see restock requests and
sync errors, and filter offers sold at a loss."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from kameng.orders.models import Order, OrderStatus
from kameng.suppliers.models import ConnectorKind, RestockRequest, Supplier, TopupAttempt
from tests.factories import SupplierFactory, SupplierOfferFactory, UserFactory

pytestmark = pytest.mark.django_db

STORED = {"preset": "yile", "base_url": "https://sup.example.com/api/", "app_id": "A1001",
          "app_secret": "very-secret-value"}


def change(admin_client: Client, supplier: Supplier, config_change: str) -> int:
    page = admin_client.get(f"/admin/suppliers/supplier/{supplier.pk}/change/")
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    for inline in page.context["inline_admin_formsets"]:  # the onboarding inlines: their management forms
        management = inline.formset.management_form
        data.update({f"{management.prefix}-{name}": value for name, value in management.initial.items()})
    data.update({"owner": supplier.owner_id, "connector_kind": ConnectorKind.HTTP,
                 "connector_config_change": config_change})
    return admin_client.post(f"/admin/suppliers/supplier/{supplier.pk}/change/", data).status_code


def test_the_change_page_masks_the_stored_secret(admin_client: Client) -> None:
    supplier = SupplierFactory.create(connector_kind=ConnectorKind.HTTP, connector_config=json.dumps(STORED))

    body = admin_client.get(f"/admin/suppliers/supplier/{supplier.pk}/change/").content.decode()

    assert "very-secret-value" not in body
    assert "ve*************ue" in body
    assert "https://sup.example.com/api/" in body


def test_a_change_is_merged_over_the_stored_config(admin_client: Client) -> None:
    supplier = SupplierFactory.create(connector_kind=ConnectorKind.HTTP, connector_config=json.dumps(STORED))

    status = change(admin_client, supplier, '{"push_secret": "p-1", "app_id": "A2002", "preset": null}')

    assert status == 302
    supplier.refresh_from_db()
    assert json.loads(str(supplier.connector_config)) == {
        "base_url": "https://sup.example.com/api/", "app_id": "A2002", "app_secret": "very-secret-value",
        "push_secret": "p-1"}


def test_an_http_config_that_cannot_work_is_refused_and_nothing_changes(admin_client: Client) -> None:
    supplier = SupplierFactory.create(connector_kind=ConnectorKind.HTTP, connector_config=json.dumps(STORED))

    status = change(admin_client, supplier, '{"app_secret": null}')

    assert status == 200
    supplier.refresh_from_db()
    assert json.loads(str(supplier.connector_config)) == STORED


def test_staff_see_restock_requests_sync_errors_and_loss_making_offers(admin_client: Client) -> None:
    offer = SupplierOfferFactory.create(price=Decimal("9.90"), sku__price=Decimal("9.50"), upstream_stock=1)
    SupplierOfferFactory.create(price=Decimal("9.00"), sku__price=Decimal("9.50"))
    Supplier.objects.filter(pk=offer.supplier_id).update(last_sync_error="UpstreamUnavailableError: down")
    RestockRequest.objects.create(offer=offer, supplier=offer.supplier, stock_at_raise=1, threshold=10)

    assert admin_client.get("/admin/suppliers/restockrequest/").status_code == 200
    assert "UpstreamUnavailableError: down" in admin_client.get("/admin/suppliers/supplier/").content.decode()
    at_loss = admin_client.get("/admin/suppliers/supplieroffer/?at_loss=yes")
    assert [row.pk for row in at_loss.context["cl"].result_list] == [offer.pk]


def _attempt(number: str) -> TopupAttempt:
    offer = SupplierOfferFactory.create()
    order = Order.objects.create(number=number, buyer=UserFactory.create(), sku=offer.sku, title="话费", quantity=1,
                                 unit_price=Decimal("50.00"), total_amount=Decimal("50.00"),
                                 status=OrderStatus.FULFILLING)
    return TopupAttempt.objects.create(order=order, offer=offer, supplier=offer.supplier, sequence=1,
                                       customer_order_no=f"{number}-1", cost=Decimal("49.10"))


def test_staff_filter_top_up_attempts_by_supplier_and_cannot_add_one_by_hand(admin_client: Client) -> None:
    mine, theirs = _attempt("K900001"), _attempt("K900002")

    listing = admin_client.get(f"/admin/suppliers/topupattempt/?supplier__id__exact={mine.supplier_id}")
    add = admin_client.get("/admin/suppliers/topupattempt/add/")

    assert listing.status_code == 200
    assert mine.customer_order_no in listing.content.decode()
    assert theirs.customer_order_no not in listing.content.decode()
    assert add.status_code == 403
