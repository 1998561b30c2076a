"""The routing rule and offer forms pick the SKU and the supplier by name (autocomplete), not by a raw id."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from kameng.suppliers.models import RoutingRuleKind, SkuRoutingRule
from tests.factories import SkuFactory, SupplierFactory

pytestmark = pytest.mark.django_db


def test_the_routing_rule_form_autocompletes_the_sku_by_product_name(admin_client: Client) -> None:
    sku = SkuFactory.create(product__name="中国移动话费", name="50 元")
    SkuFactory.create(product__name="王者荣耀点券", name="60 点券")
    supplier = SupplierFactory.create(name="甲供货")

    form = admin_client.get(reverse("admin:suppliers_skuroutingrule_add")).content.decode()
    assert 'data-ajax--url="/admin/autocomplete/"' in form
    assert "vForeignKeyRawIdAdminField" not in form

    found = admin_client.get(reverse("admin:autocomplete"), {
        "app_label": "suppliers", "model_name": "skuroutingrule", "field_name": "sku", "term": "移动"})
    assert json.loads(found.content)["results"] == [{"id": str(sku.pk), "text": "中国移动话费 · 50 元"}]

    created = admin_client.post(reverse("admin:suppliers_skuroutingrule_add"), {
        "sku": sku.pk, "supplier": supplier.pk, "kind": RoutingRuleKind.PIN, "note": "合同价"})
    assert created.status_code == 302
    rule = SkuRoutingRule.objects.get()
    assert (rule.sku_id, rule.supplier_id, rule.kind) == (sku.pk, supplier.pk, RoutingRuleKind.PIN)
    listing = admin_client.get(reverse("admin:suppliers_skuroutingrule_changelist")).content.decode()
    assert "中国移动话费 · 50 元" in listing


def test_the_sku_lookup_is_not_a_page_of_the_menu(admin_client: Client) -> None:
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:catalog_sku_changelist") not in index
