"""Becoming a reseller: the application page, the state machine of the services, the account page's link, and
the staff pages (approve at a tier, reject, suspend, reactivate, appoint; tier prices refused below cost)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from kameng.resellers.models import Reseller, ResellerStatus, TierPrice
from kameng.resellers.services import (
    AlreadyAppliedError,
    ResellerInputError,
    ResellerStateError,
    reseller_apply,
    reseller_appoint,
    reseller_approve,
    reseller_reactivate,
    reseller_reject,
    reseller_suspend,
)
from tests.factories import SkuFactory, SupplierOfferFactory, UserFactory
from tests.resellers.support import reseller_make, tier_make

pytestmark = pytest.mark.django_db


def _staff() -> int:
    return UserFactory.create(is_staff=True, is_superuser=True).pk


def test_apply_then_approve_then_suspend_then_reactivate() -> None:
    user = UserFactory.create()
    tier = tier_make()
    staff = _staff()
    reseller = reseller_apply(user_id=user.pk, contact=" 13800000000 ", note="抖音直播间")
    assert (reseller.status, reseller.contact, reseller.application_note) == ("pending", "13800000000", "抖音直播间")
    reseller = reseller_approve(reseller_id=reseller.pk, tier_id=tier.pk, staff_id=staff)
    assert (reseller.status, reseller.tier_id, reseller.reviewed_by_id) == ("active", tier.pk, staff)
    reseller = reseller_suspend(reseller_id=reseller.pk, staff_id=staff, reason="违规转售")
    assert (reseller.status, reseller.review_reason) == ("suspended", "违规转售")
    reseller = reseller_reactivate(reseller_id=reseller.pk, staff_id=staff)
    assert reseller.status == "active"


def test_apply_twice_is_refused_until_rejected() -> None:
    user = UserFactory.create()
    reseller = reseller_apply(user_id=user.pk, contact="qq 12345", note="")
    with pytest.raises(AlreadyAppliedError, match="当前状态：申请中"):
        reseller_apply(user_id=user.pk, contact="qq 12345", note="")
    reseller_reject(reseller_id=reseller.pk, staff_id=_staff(), reason="资料不全")
    again = reseller_apply(user_id=user.pk, contact="微信 abc", note="补充了资料")
    assert (again.pk, again.status, again.contact, again.review_reason) == (reseller.pk, "pending", "微信 abc", "")
    assert Reseller.objects.count() == 1


@pytest.mark.parametrize(("move", "status"), [
    ("approve", ResellerStatus.ACTIVE), ("approve", ResellerStatus.REJECTED), ("approve", ResellerStatus.SUSPENDED),
    ("reject", ResellerStatus.ACTIVE), ("suspend", ResellerStatus.PENDING), ("reactivate", ResellerStatus.PENDING),
])
def test_illegal_moves_are_refused(move: str, status: str) -> None:
    tier = tier_make()
    reseller = reseller_make(tier, status=status)
    staff = _staff()
    calls = {
        "approve": lambda: reseller_approve(reseller_id=reseller.pk, tier_id=tier.pk, staff_id=staff),
        "reject": lambda: reseller_reject(reseller_id=reseller.pk, staff_id=staff, reason="不符合"),
        "suspend": lambda: reseller_suspend(reseller_id=reseller.pk, staff_id=staff, reason="违规"),
        "reactivate": lambda: reseller_reactivate(reseller_id=reseller.pk, staff_id=staff),
    }
    with pytest.raises(ResellerStateError):
        calls[move]()
    reseller.refresh_from_db()
    assert reseller.status == status


def test_reject_needs_a_reason_and_contact_is_required() -> None:
    reseller = reseller_make(None, status=ResellerStatus.PENDING)
    with pytest.raises(ResellerInputError, match="请填写原因"):
        reseller_reject(reseller_id=reseller.pk, staff_id=_staff(), reason="  ")
    with pytest.raises(ResellerInputError, match="请填写联系方式"):
        reseller_apply(user_id=UserFactory.create().pk, contact=" ", note="")


def test_appoint_makes_any_user_an_active_reseller_but_not_twice() -> None:
    tier = tier_make()
    user = UserFactory.create()
    reseller = reseller_appoint(user_id=user.pk, tier_id=tier.pk, staff_id=_staff())
    assert (reseller.status, reseller.tier_id, reseller.review_reason) == ("active", tier.pk, "后台任命")
    with pytest.raises(ResellerStateError):
        reseller_appoint(user_id=user.pk, tier_id=tier.pk, staff_id=_staff())
    rejected = reseller_make(None, status=ResellerStatus.REJECTED)
    assert reseller_appoint(user_id=rejected.user_id, tier_id=tier.pk, staff_id=_staff()).status == "active"


def test_apply_page_submits_then_shows_the_state(client: Client) -> None:
    user = UserFactory.create()
    client.force_login(user)
    assert client.get(reverse("web:reseller_apply")).status_code == 200
    response = client.post(reverse("web:reseller_apply"), {"contact": "13800000000", "note": "主播"})
    assert response.status_code == 302
    page = client.get(reverse("web:reseller_apply")).content.decode()
    assert 'data-status="pending"' in page
    assert "reseller-apply-submit" not in page
    again = client.post(reverse("web:reseller_apply"), {"contact": "x", "note": ""})
    assert again.status_code == 302
    assert Reseller.objects.get(user=user).contact == "13800000000"


def test_apply_page_refuses_an_empty_contact(client: Client) -> None:
    client.force_login(UserFactory.create())
    response = client.post(reverse("web:reseller_apply"), {"contact": "", "note": ""})
    assert response.status_code == 400
    assert not Reseller.objects.exists()


def test_apply_page_needs_login(client: Client) -> None:
    response = client.get(reverse("web:reseller_apply"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_account_page_links_to_apply_or_console(client: Client) -> None:
    user = UserFactory.create()
    client.force_login(user)
    page = client.get(reverse("web:account")).content.decode()
    assert reverse("web:reseller_apply") in page
    assert "申请成为代理" in page
    reseller_make(tier_make(), user=user)
    page = client.get(reverse("web:account")).content.decode()
    assert "代理后台" in page


# --- staff pages --------------------------------------------------------------------------------------------------

def test_staff_approve_action_sets_the_tier(client: Client) -> None:
    tier = tier_make()
    reseller = reseller_make(None, status=ResellerStatus.PENDING)
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    url = reverse("admin:resellers_reseller_approve", args=[reseller.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"tier": tier.pk, "reason": ""})
    assert response.status_code == 302
    reseller.refresh_from_db()
    assert (reseller.status, reseller.tier_id) == ("active", tier.pk)


def test_staff_reject_and_appoint_actions(client: Client) -> None:
    tier = tier_make()
    reseller = reseller_make(None, status=ResellerStatus.PENDING)
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    refused = client.post(reverse("admin:resellers_reseller_reject", args=[reseller.pk]), {"reason": ""})
    assert refused.status_code == 200
    client.post(reverse("admin:resellers_reseller_reject", args=[reseller.pk]), {"reason": "资料不全"})
    reseller.refresh_from_db()
    assert (reseller.status, reseller.review_reason) == ("rejected", "资料不全")
    user = UserFactory.create(username="streamer1")
    response = client.post(reverse("admin:resellers_reseller_appoint"),
                           {"username": "streamer1", "tier": tier.pk, "reason": ""})
    assert response.status_code == 302
    assert Reseller.objects.get(user=user).status == "active"


def test_staff_reseller_list_and_search(client: Client) -> None:
    reseller_make(tier_make(), user=UserFactory.create(username="findme"))
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    response = client.get(reverse("admin:resellers_reseller_changelist"), {"q": "findme", "status": "active"})
    assert response.status_code == 200
    assert "findme" in response.content.decode()


def _tier_post(tier_id: int | None, sku_id: int, *, discount: str, kind: str, fixed: str = "") -> dict[str, str]:
    return {"name": "高级代理", "rank": "2", "discount_percent": discount, "subsite_markup_cap_percent": "50.00",
            "is_active": "on", "prices-TOTAL_FORMS": "1", "prices-INITIAL_FORMS": "0", "prices-MIN_NUM_FORMS": "0",
            "prices-MAX_NUM_FORMS": "1000", "prices-0-sku": str(sku_id), "prices-0-kind": kind,
            "prices-0-percent_off": "", "prices-0-fixed_price": fixed}


def test_staff_tier_price_below_cost_is_refused_with_the_sku_named(client: Client) -> None:
    sku = SkuFactory.create(price=Decimal("100.00"), product__name="王者点券", name="100 元")
    SupplierOfferFactory.create(sku=sku, price=Decimal("90.00"))
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    url = reverse("admin:resellers_resellertier_add")
    response = client.post(url, _tier_post(None, sku.pk, discount="5.00", kind="fixed", fixed="80.00"))
    assert response.status_code == 200
    assert "「王者点券 · 100 元」的代理价 ¥80.00 低于平台成本 ¥90.00" in response.content.decode()
    assert not TierPrice.objects.exists()
    # the default discount alone would take the SKU below cost too
    response = client.post(url, _tier_post(None, sku.pk, discount="20.00", kind="fixed", fixed="95.00"))
    assert "¥80.00 低于平台成本 ¥90.00" in response.content.decode()
    response = client.post(url, _tier_post(None, sku.pk, discount="5.00", kind="fixed", fixed="90.00"))
    assert response.status_code == 302
    assert TierPrice.objects.get().fixed_price == Decimal("90.00")


def test_staff_sku_autocomplete_answers(client: Client) -> None:
    SkuFactory.create(product__name="王者点券")
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    response = client.get(reverse("admin:autocomplete"), {
        "term": "王者", "app_label": "resellers", "model_name": "tierprice", "field_name": "sku"})
    assert response.status_code == 200
    assert [result["text"] for result in response.json()["results"]] == ["王者点券 · 10 元"]


def test_staff_tier_change_page_shows_its_prices(client: Client) -> None:
    tier = tier_make()
    sku = SkuFactory.create(product__name="王者点券")
    TierPrice.objects.create(tier=tier, sku=sku, kind="fixed", fixed_price=Decimal("8.00"))
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    response = client.get(reverse("admin:resellers_resellertier_change", args=[tier.pk]))
    assert response.status_code == 200
    assert "王者点券" in response.content.decode()
