"""Staff edit a direct top-up product's form (Product.topup_form) in the back office: a bad template is refused
with every problem named by field, a good one is saved with its defaults, and only direct top-ups take one."""

from __future__ import annotations

import html
import json

import pytest
from django.test import Client
from django.urls import reverse

from kameng.catalog.models import Product
from tests.admin.test_catalog_admin import _product_form, _sku_row

pytestmark = pytest.mark.django_db
ADD = "admin:catalog_product_add"


def _post(admin_client: Client, template: str, delivery_kind: str = "direct_topup") -> tuple[int, str]:
    data = _product_form(None, [_sku_row(0)], initial=0, delivery_kind=delivery_kind, topup_form=template)
    response = admin_client.post(reverse(ADD), data)
    return response.status_code, html.unescape(response.content.decode())


def test_the_product_page_offers_the_form_field_with_its_format(admin_client: Client) -> None:
    page = html.unescape(admin_client.get(reverse(ADD)).content.decode())
    assert 'name="topup_form"' in page
    assert "直充充值表单" in page
    assert "kind（phone 手机号 / text 文字 / select 下拉选择）" in page


def test_a_good_template_is_saved_with_its_defaults(admin_client: Client) -> None:
    template = [{"name": "phone", "label": "手机号", "kind": "phone", "carriers": ["移动", "联通"]}]
    status, _page = _post(admin_client, json.dumps(template, ensure_ascii=False))
    assert status == 302
    assert Product.objects.get().topup_form == [{**template[0], "required": True}]


def test_an_empty_template_is_saved_as_an_empty_list(admin_client: Client) -> None:
    status, _page = _post(admin_client, "")
    assert status == 302
    assert Product.objects.get().topup_form == []


def test_a_bad_template_names_every_problem(admin_client: Client) -> None:
    template = [{"name": "region", "label": "大区", "kind": "select"},
                {"name": "region", "label": "账号", "kind": "number"},
                {"name": "account", "label": "账号", "kind": "text", "pattern": "([a-z"}]
    status, page = _post(admin_client, json.dumps(template, ensure_ascii=False))

    assert status == 200
    assert "第 1 个字段（region）：select 类型必须有 options" in page
    assert "第 2 个字段（region）：name「region」重复" in page
    assert "第 2 个字段（region）：未知的类型 kind「number」" in page
    assert "第 3 个字段（account）：pattern 不是有效的正则表达式" in page
    assert not Product.objects.exists()


def test_json_that_does_not_parse_is_refused(admin_client: Client) -> None:
    status, _page = _post(admin_client, '[{"name": "phone",')
    assert status == 200
    assert not Product.objects.exists()


def test_a_card_key_product_takes_no_form(admin_client: Client) -> None:
    template = [{"name": "phone", "label": "手机号", "kind": "phone"}]
    status, page = _post(admin_client, json.dumps(template, ensure_ascii=False), delivery_kind="card_key")
    assert status == 200
    assert "只有「直充」商品需要充值表单" in page
    assert not Product.objects.exists()
