"""The audit log: every staff change in the admin recorded with the changed fields before and after (secrets and
personal data masked), bulk actions with the rows they touched; entries are never changed (no admin change or delete;
PostgreSQL refuses UPDATE and DELETE); searchable and exportable as CSV and XLSX."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.db import DatabaseError, connection, transaction
from django.test import Client, RequestFactory
from django.urls import reverse
from openpyxl import load_workbook

from kameng.accounts.models import User
from kameng.audit.models import AuditEntry
from kameng.audit.services import audit_record
from kameng.catalog.models import Category, Sku
from kameng.inventory.models import CardKey, CardKeyStatus
from tests.factories import CategoryFactory, SkuFactory, UserFactory, stock_sku

pytestmark = pytest.mark.django_db


def _product_form(sku: Sku, **sku_changes: str) -> dict[str, Any]:
    product = sku.product
    row = {"id": sku.pk, "product": product.pk, "name": sku.name,
           "face_value": "" if sku.face_value is None else str(sku.face_value), "price": str(sku.price),
           "is_active": "on", "sort_order": "0", **sku_changes}
    return {"category": product.category_id, "name": product.name, "description": "", "delivery_kind": "card_key",
            "status": "on_sale", "sort_order": "0", "min_quantity": "1", "max_quantity": "100",
            "low_stock_threshold": "10", "skus-TOTAL_FORMS": "1", "skus-INITIAL_FORMS": "1",
            "skus-MIN_NUM_FORMS": "0", "skus-MAX_NUM_FORMS": "1000",
            **{f"skus-0-{name}": value for name, value in row.items()}}


def test_a_price_change_in_the_admin_is_recorded_with_before_and_after(admin_client: Client) -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))

    response = admin_client.post(reverse("admin:catalog_product_change", args=[sku.product_id]),
                                 _product_form(sku, price="12.50"), HTTP_USER_AGENT="pytest-browser")

    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="admin.change", object_type="catalog.sku")
    assert entry.object_id == str(sku.pk)
    assert entry.before == {"price": "10.00"}
    assert entry.after == {"price": "12.50"}
    assert entry.actor_username == "admin"
    assert entry.ip_address == "127.0.0.1"
    assert entry.user_agent == "pytest-browser"


def test_a_stock_change_by_a_bulk_action_is_recorded_with_its_rows(admin_client: Client) -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 2)
    ids = sorted(CardKey.objects.values_list("pk", flat=True))

    admin_client.post(reverse("admin:inventory_cardkey_changelist"),
                      {"action": "void_available", "_selected_action": [str(pk) for pk in ids]})

    assert CardKey.objects.filter(status=CardKeyStatus.VOID).count() == 2
    entry = AuditEntry.objects.get(action="admin.action:void_available")
    assert entry.object_type == "inventory.cardkey"
    assert entry.after == {"selected": [str(pk) for pk in ids]}


def test_a_user_change_is_recorded_with_personal_data_masked() -> None:
    staff = UserFactory.create(username="boss", is_staff=True, is_superuser=True)
    user = UserFactory.create(username="buyer_a", email="a@example.com")
    user_admin = admin.site._registry[User]
    request = RequestFactory().post("/admin/accounts/user/", REMOTE_ADDR="203.0.113.9")
    request.user = staff

    user.is_active = False
    user.phone = "13812345678"
    user.set_password("a-new-password-1")
    user_admin.save_model(request, user, None, change=True)
    user_admin.log_change(request, user, "")

    entry = AuditEntry.objects.get(action="admin.change", object_type="accounts.user")
    assert entry.before is not None
    assert entry.after is not None
    assert entry.before["is_active"] is True
    assert entry.after["is_active"] is False
    assert entry.after["password"] == "***"
    assert "13812345678" not in str(entry.after)
    assert entry.ip_address == "203.0.113.9"


def test_a_settings_row_added_and_deleted_in_the_admin_is_recorded(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:catalog_category_add"),
                                 {"name": "点卡", "slug": "cards", "sort_order": "0", "is_active": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    category = Category.objects.get(slug="cards")
    admin_client.post(reverse("admin:catalog_category_delete", args=[category.pk]), {"post": "yes"})

    added = AuditEntry.objects.get(action="admin.add", object_type="catalog.category")
    deleted = AuditEntry.objects.get(action="admin.delete", object_type="catalog.category")
    assert added.after is not None
    assert added.after["name"] == "点卡"
    assert deleted.object_id == str(category.pk)
    assert deleted.before is not None
    assert deleted.before["slug"] == "cards"


def test_a_rule_change_is_recorded_with_only_the_changed_fields(admin_client: Client) -> None:
    # Risk rules are being built beside this; a category's visibility is the same kind of row: a staff switch.
    category = CategoryFactory.create()
    data = {"name": category.name, "slug": category.slug, "sort_order": "5"}  # is_active unticked: turned off

    response = admin_client.post(reverse("admin:catalog_category_change", args=[category.pk]), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(action="admin.change", object_type="catalog.category")
    assert set(entry.after or {}) <= {"is_active", "sort_order", "updated_at"}
    assert (entry.after or {}).get("sort_order") == 5


def test_the_audit_log_cannot_be_changed_or_deleted_in_the_admin(admin_client: Client) -> None:
    entry = audit_record(action="test.entry", object_type="x.y", object_id=1, object_repr="thing")
    model_admin = admin.site._registry[AuditEntry]
    request = RequestFactory().get("/")
    request.user = User.objects.get(username="admin")

    assert not model_admin.has_change_permission(request, entry)
    assert not model_admin.has_delete_permission(request, entry)
    assert not model_admin.has_add_permission(request)
    assert admin_client.post(reverse("admin:audit_auditentry_delete", args=[entry.pk]), {"post": "yes"}
                             ).status_code == 403
    page = admin_client.get(reverse("admin:audit_auditentry_change", args=[entry.pk]))
    assert page.status_code == 200
    assert 'name="action"' not in page.content.decode() or "delete_selected" not in page.content.decode()
    assert AuditEntry.objects.filter(pk=entry.pk, action="test.entry").exists()


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_postgresql_refuses_to_update_or_delete_an_entry() -> None:
    entry = audit_record(action="test.entry", object_repr="thing")

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="forged")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()

    assert AuditEntry.objects.get(pk=entry.pk).action == "test.entry"


def test_search_by_operator_and_object(admin_client: Client) -> None:
    audit_record(action="refund.create", actor=UserFactory.create(username="alice"), object_type="payments.refund",
                 object_id=7, object_repr="R-7")
    audit_record(action="refund.create", actor=UserFactory.create(username="bob"), object_type="payments.refund",
                 object_id=8, object_repr="R-8")
    url = reverse("admin:audit_auditentry_changelist")

    by_operator = admin_client.get(url, {"q": "alice"}).content.decode()
    by_action = admin_client.get(url, {"action": "refund.create"}).content.decode()

    assert "R-7" in by_operator
    assert "R-8" not in by_operator
    assert "R-7" in by_action
    assert "R-8" in by_action


def _export(client: Client, action: str) -> bytes:
    ids = [str(pk) for pk in AuditEntry.objects.filter(action="refund.create").values_list("pk", flat=True)]
    response = client.post(reverse("admin:audit_auditentry_changelist"), {"action": action, "_selected_action": ids})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="audit-log-')
    return response.content


def test_export_csv_and_xlsx(admin_client: Client) -> None:
    audit_record(action="refund.create", actor=UserFactory.create(username="alice"), object_type="payments.refund",
                 object_id=7, object_repr="=HYPERLINK(1)", before={"status": "pending"}, after={"amount": "9.90"})

    rows = list(csv.reader(io.StringIO(_export(admin_client, "export_csv").decode("utf-8-sig"))))
    sheet = load_workbook(io.BytesIO(_export(admin_client, "export_xlsx"))).active
    assert sheet is not None
    cells = [[cell.value for cell in row] for row in sheet.iter_rows()]

    assert rows[0][:4] == ["ID", "时间", "操作人", "操作"]
    assert rows[1][2:7] == ["alice", "refund.create", "payments.refund", "7", "'=HYPERLINK(1)"]
    assert rows[1][7:9] == ['{"status": "pending"}', '{"amount": "9.90"}']
    assert cells[1][2:7] == ["alice", "refund.create", "payments.refund", "7", "=HYPERLINK(1)"]
    assert sheet["G2"].data_type == "s"
    assert AuditEntry.objects.filter(action="audit.export").count() == 2


def test_the_list_names_actions_and_object_types_in_chinese(admin_client: Client) -> None:
    from kameng.audit.admin import ACTION_LABELS

    staff = UserFactory.create(username="auditor")
    audit_record(action="admin.change", actor=staff, instance=staff)
    audit_record(action="custom.unknown", actor=staff, object_type="nosuch.model", object_id=1)

    page = admin_client.get(reverse("admin:audit_auditentry_changelist")).content.decode()

    assert "修改（admin.change）" in page
    assert ">用户<" in page  # accounts.user by its model's name
    assert "custom.unknown" in page  # no label: the code as it is
    assert "nosuch.model" in page
    from kameng.audit.admin import object_type_label

    assert [object_type_label(name) for name in ("accounts.user", "otp_static.staticdevice", "nosuch.model")] == [
        "用户", "恢复码", "nosuch.model"]
    emitted = {"admin.add", "admin.change", "admin.delete", "aml_review.approve", "aml_review.reject",
               "aml_review.refund_again", "audit.export", "refund.create", "staff_otp.enrolled", "staff_otp.failed",
               "staff_otp.reauth", "staff_otp.recovery_code_used", "staff_otp.throttled", "supplier_tax_report.export",
               "supplier_withdrawal.pay", "supplier_withdrawal.reject"}
    assert set(ACTION_LABELS) == emitted
