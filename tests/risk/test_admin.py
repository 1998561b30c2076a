"""The risk back office: rules, blacklist (one entry, and many at once with every line checked first), the
minors' limits, and the decisions searched by user, address, checkpoint and decision, marked reviewed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from kameng.risk.blacklist import blacklist_add
from kameng.risk.engine import RiskContext, risk_check
from kameng.risk.models import (
    Action,
    BlacklistEntry,
    BlacklistKind,
    Checkpoint,
    RiskDecision,
    RiskRule,
    RuleKind,
)
from tests.factories import UserFactory
from tests.risk.support import rule

pytestmark = pytest.mark.django_db
PHONE = "13812345678"


def test_every_risk_page_opens(admin_client: Client) -> None:
    created = rule(checkpoint=Checkpoint.TOPUP, kind=RuleKind.AMOUNT, amount_threshold="1", action=Action.REVIEW)
    result = risk_check(checkpoint=Checkpoint.TOPUP, context=RiskContext(ip="203.0.113.9", amount=Decimal("5")))
    entry = blacklist_add(kind=BlacklistKind.CIDR, text="10.0.0.0/8")
    pages = [reverse(f"admin:risk_{name}_changelist") for name in ("riskrule", "blacklistentry", "minorspolicy",
                                                                     "riskdecision")]
    pages += [reverse("admin:risk_riskrule_change", args=[created.pk]), reverse("admin:risk_riskrule_add"),
              reverse("admin:risk_blacklistentry_change", args=[entry.pk]), reverse("admin:risk_blacklistentry_add"),
              reverse("admin:risk_blacklistentry_bulk_add"), reverse("admin:risk_minorspolicy_change", args=[1]),
              reverse("admin:risk_riskdecision_change", args=[result.decision_id])]
    for page in pages:
        assert admin_client.get(page).status_code == 200, page


def test_a_rule_added_in_the_admin_applies_at_once(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:risk_riskrule_add"), {
        "name": "大额充值", "checkpoint": "topup", "kind": "amount", "action": "block", "priority": "100",
        "is_enabled": "on", "dimension": "", "window_seconds": "3600", "limit": "5", "amount_threshold": "100.00",
        "message": "单笔充值不能超过 100 元"})
    assert response.status_code == 302
    with pytest.raises(Exception, match="单笔充值不能超过 100 元"):
        risk_check(checkpoint=Checkpoint.TOPUP, context=RiskContext(amount=Decimal("100.01")))


def test_a_velocity_rule_without_a_dimension_is_refused(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:risk_riskrule_add"), {
        "name": "x", "checkpoint": "login", "kind": "velocity", "action": "block", "priority": "100",
        "dimension": "", "window_seconds": "3600", "limit": "5"})
    assert response.status_code == 200
    assert "频率限制规则须选择计数维度" in response.content.decode()
    assert not RiskRule.objects.filter(name="x").exists()


def test_a_phone_added_in_the_admin_is_stored_hashed_and_shown_masked(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:risk_blacklistentry_add"),
                                 {"kind": "phone", "text": PHONE, "reason": "诈骗"})
    assert response.status_code == 302
    entry = BlacklistEntry.objects.get()
    assert (entry.shown, entry.reason) == ("138****5678", "诈骗")
    assert PHONE not in entry.value
    listing = admin_client.get(reverse("admin:risk_blacklistentry_changelist")).content.decode()
    assert "138****5678" in listing
    assert PHONE not in listing


def test_bulk_add_checks_every_line_before_adding_any(admin_client: Client) -> None:
    url = reverse("admin:risk_blacklistentry_bulk_add")
    refused = admin_client.post(url, {"kind": "ip", "lines": "203.0.113.1\nnot-an-ip\n2001:db8::1", "reason": "扫号"})
    assert refused.status_code == 200
    assert "第 2 行" in refused.content.decode()
    assert not BlacklistEntry.objects.exists()

    added = admin_client.post(url, {"kind": "ip", "reason": "扫号",
                                    "lines": "203.0.113.1\n# 注释\n\n2001:db8::1\n203.0.113.1"})
    assert added.status_code == 302
    assert sorted(BlacklistEntry.objects.values_list("value", flat=True)) == ["2001:db8::/64", "203.0.113.1"]
    assert set(BlacklistEntry.objects.values_list("kind", flat=True)) == {BlacklistKind.IP}


def test_decisions_are_searchable_and_review_can_be_marked(admin_client: Client) -> None:
    buyer = UserFactory.create(username="suspect")
    rule(checkpoint=Checkpoint.TOPUP, kind=RuleKind.AMOUNT, amount_threshold="1", action=Action.REVIEW)
    risk_check(checkpoint=Checkpoint.TOPUP, context=RiskContext(user_id=buyer.pk, ip="203.0.113.9",
                                                                amount=Decimal("5")))
    url = reverse("admin:risk_riskdecision_changelist")
    for query in ({"q": "suspect"}, {"q": "203.0.113.9"}, {"checkpoint__exact": "topup"},
                  {"decision__exact": "review"}, {"review": "pending"}):
        assert "suspect" in admin_client.get(url, query).content.decode(), query
    assert "suspect" not in admin_client.get(url, {"checkpoint__exact": "login"}).content.decode()

    decision = RiskDecision.objects.get()
    admin_client.post(url, {"action": "mark_reviewed", "_selected_action": [decision.pk]})
    decision.refresh_from_db()
    assert decision.reviewed_at is not None
    assert admin_client.get(reverse("admin:risk_riskdecision_change", args=[decision.pk])).status_code == 200


def test_a_range_typed_as_an_ip_says_to_choose_the_range_kind(admin_client: Client) -> None:
    single = admin_client.post(reverse("admin:risk_blacklistentry_add"), {"kind": "ip", "text": "10.0.0.0/8"})
    bulk = admin_client.post(reverse("admin:risk_blacklistentry_bulk_add"),
                             {"kind": "ip", "lines": "10.0.0.0/8\n999.1.1.1\n10.0.0.0/33"})

    assert single.status_code == 200
    assert "「10.0.0.0/8」是 IP 段：请把类型选为「IP 段（CIDR）」" in single.content.decode()
    page = bulk.content.decode()
    assert "第 1 行：「10.0.0.0/8」是 IP 段：请把类型选为「IP 段（CIDR）」" in page
    assert "第 2 行：「999.1.1.1」不是有效的 IP 地址" in page
    bad_range = admin_client.post(reverse("admin:risk_blacklistentry_add"), {"kind": "cidr", "text": "10.0.0.0/33"})
    assert "「10.0.0.0/33」不是有效的 IP 段" in bad_range.content.decode()
    assert not BlacklistEntry.objects.exists()


def test_the_blacklist_forms_draw_their_inputs_in_the_admin_theme(admin_client: Client) -> None:
    """A bare Django widget renders borderless in Unfold: staff could not see where to type the value."""
    import re

    single = admin_client.get(reverse("admin:risk_blacklistentry_add")).content.decode()
    bulk = admin_client.get(reverse("admin:risk_blacklistentry_bulk_add")).content.decode()

    def css_of(page: str, tag: str, name: str) -> str:
        found = re.search(rf'<{tag}[^>]*name="{name}"[^>]*>', page)
        assert found is not None, name
        classes = re.search(r'class="([^"]*)"', found.group())
        return classes.group(1) if classes else ""

    assert "border" in css_of(single, "input", "text")
    for tag, name in (("select", "kind"), ("textarea", "lines"), ("input", "reason"), ("input", "expires_at")):
        assert "border" in css_of(bulk, tag, name), name
