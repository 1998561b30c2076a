"""The back office speaks Chinese: django-unfold's own texts come from kameng/locale (unfold ships no zh-hans
catalog), and every field has a Chinese label."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse

from kameng.ledger.models import Entry
from tests.factories import SkuFactory, UserFactory, fund_wallet

pytestmark = pytest.mark.django_db

UNFOLD_ENGLISH = (
    "Welcome back to", "Return to site", ">Light<", ">Dark<", ">System<", "Filters", "Type to search",
    "Select action", "Select all rows", "Select value", "No results found", "This page yielded into no results",
    "Reset filters", "Create a new item or reset your filters", "Search apps and models", "Apply Filters",
)


def _english_in(page: str) -> list[str]:
    return [text for text in UNFOLD_ENGLISH if text in page]


def test_the_login_page_is_chinese(client: Client) -> None:
    page = client.get(reverse("admin:login")).content.decode()

    assert _english_in(page) == []
    assert "欢迎回到" in page


def test_admin_pages_show_no_english_from_unfold(admin_client: Client) -> None:
    sku = SkuFactory.create()
    pages = {
        "index": reverse("admin:index"),
        "empty search": reverse("admin:catalog_product_changelist") + "?q=nothing-matches-this",
        "changelist": reverse("admin:catalog_product_changelist"),
        "change form": reverse("admin:catalog_product_change", args=[sku.product_id]),
        "add form": reverse("admin:catalog_product_add"),
    }
    rendered = {name: admin_client.get(url).content.decode() for name, url in pages.items()}

    assert {name: _english_in(page) for name, page in rendered.items()} == {name: [] for name in pages}
    assert "浅色" in rendered["index"]
    assert "深色" in rendered["index"]
    assert "筛选" in rendered["changelist"]
    assert "选择操作" in rendered["changelist"]
    assert "本页没有结果" in rendered["empty search"]
    assert "重置筛选" in rendered["empty search"]


def test_ledger_entry_page_labels_journal_and_account_in_chinese(admin_client: Client) -> None:
    fund_wallet(UserFactory.create(), "5.00")
    entry = Entry.objects.order_by("pk").first()
    assert entry is not None

    page = admin_client.get(reverse("admin:ledger_entry_change", args=[entry.pk])).content.decode()

    assert re.search(r">\s*记账凭证", page)
    assert re.search(r">\s*账户", page)
    assert not re.search(r">\s*(Journal|Account)\b", page)


def test_every_field_of_our_models_has_a_chinese_label() -> None:
    english = [
        f"{model._meta.label}.{field.name}"
        # A proxy's fields are its concrete model's: django-otp's recovery codes (StaffRecoveryCodes) are not ours.
        for model in apps.get_models() if model._meta.concrete_model.__module__.startswith("kameng.")
        for field in model._meta.concrete_fields
        if not field.primary_key and not re.search(r"[\u4e00-\u9fff]", str(field.verbose_name))
    ]
    assert english == []


def test_permissions_are_named_in_chinese_on_group_and_user_pages(admin_client: Client) -> None:
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="客服")
    staff = UserFactory.create(is_staff=True)

    group_page = admin_client.get(reverse("admin:auth_group_change", args=[group.pk])).content.decode()
    user_page = admin_client.get(reverse("admin:accounts_user_change", args=[staff.pk])).content.decode()

    for page in (group_page, user_page):
        assert "商品 | 分类 | 新增分类" in page
        assert "库存 | 卡密 | 查看卡密" in page
        assert "Can add" not in page
        assert "Can view" not in page
