"""The rule engine at each rule type's boundary, the decisions it stores, its failure policy and how fast a rule
change reaches a running process."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from kameng.accounts.models import PHONE_CONTEXT, REAL_NAME_ID_NUMBER_CONTEXT, User
from kameng.accounts.selectors import identity_index_of, phone_index_of
from kameng.core.device import device_hash
from kameng.risk import blacklist as blacklist_module
from kameng.risk import counters, engine, rules
from kameng.risk.blacklist import blacklist_add
from kameng.risk.engine import (
    RiskBlockedError,
    RiskContext,
    RiskUnavailableError,
    SmsRequiredError,
    risk_check,
)
from kameng.risk.models import (
    Action,
    BlacklistKind,
    Checkpoint,
    Decision,
    Dimension,
    RiskDecision,
    RiskRule,
    RuleKind,
)
from tests.accounts.ids import id_number
from tests.risk.support import rule

pytestmark = pytest.mark.django_db

PHONE = "13812345678"


@pytest.fixture(autouse=True)
def _users() -> None:
    """Users 1–10 exist: decisions name them."""
    User.objects.bulk_create([User(pk=number, username=f"risk-user-{number}") for number in range(1, 11)])


def attempts(checkpoint: str, count: int, **context: Any) -> list[str]:
    """`count` checks with the same context: "ok" or the error code of each."""
    answers = []
    for _ in range(count):
        try:
            risk_check(checkpoint=checkpoint, context=RiskContext(**context))
        except (RiskBlockedError, SmsRequiredError) as error:
            answers.append(error.code)
        else:
            answers.append("ok")
    return answers


# --- velocity ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("dimension", "context"), [
    (Dimension.IP, {"ip": "203.0.113.9"}),
    (Dimension.DEVICE, {"device_id": "h:device-0001"}),
    (Dimension.PHONE, {"phone": PHONE}),
    (Dimension.ACCOUNT, {"user_id": 4}),
    (Dimension.ID_FINGERPRINT, {"id_fingerprint": id_number()}),
])
def test_a_velocity_rule_passes_four_and_blocks_the_fifth(dimension: str, context: dict[str, Any]) -> None:
    rule(checkpoint=Checkpoint.LOGIN, dimension=dimension, limit=4, message="登录过于频繁，请稍后再试")

    assert attempts(Checkpoint.LOGIN, 5, **context) == ["ok"] * 4 + ["risk_blocked"]
    stored = RiskDecision.objects.filter(decision=Decision.BLOCK).get()
    assert stored.inputs["count"] == 5
    assert RiskDecision.objects.filter(decision=Decision.ALLOW).count() == 4


def test_the_blocked_message_is_the_rules_own() -> None:
    rule(checkpoint=Checkpoint.LOGIN, dimension=Dimension.IP, limit=0, message="该网络登录过于频繁，请 1 小时后再试")
    with pytest.raises(RiskBlockedError) as refused:
        risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(ip="203.0.113.9"))
    assert refused.value.status_code == 403
    assert refused.value.message == "该网络登录过于频繁，请 1 小时后再试"


def test_ipv6_addresses_of_one_slash_64_count_together_and_another_64_apart() -> None:
    rule(checkpoint=Checkpoint.REGISTER, dimension=Dimension.IP, limit=2)
    assert attempts(Checkpoint.REGISTER, 1, ip="2001:db8:1:2::1") == ["ok"]
    assert attempts(Checkpoint.REGISTER, 1, ip="2001:db8:1:2:ffff:ffff:ffff:fffe") == ["ok"]
    assert attempts(Checkpoint.REGISTER, 1, ip="2001:db8:1:2::99") == ["risk_blocked"]
    assert attempts(Checkpoint.REGISTER, 1, ip="2001:db8:1:3::1") == ["ok"]


def test_a_device_limit_holds_when_the_address_changes() -> None:
    rule(checkpoint=Checkpoint.SMS, dimension=Dimension.DEVICE, limit=2)
    answers = [attempts(Checkpoint.SMS, 1, ip=f"198.51.100.{n}", device_id="h:phone-abcdefgh")[0] for n in range(3)]
    assert answers == ["ok", "ok", "risk_blocked"]


def test_a_velocity_window_closes_and_opens_again() -> None:
    if not hasattr(getattr(cache, "_cache", None), "get_client"):
        pytest.skip("the counters' keys are listed on Redis")
    rule(checkpoint=Checkpoint.LOGIN, dimension=Dimension.ACCOUNT, limit=1, window_seconds=60)
    assert attempts(Checkpoint.LOGIN, 2, user_id=7) == ["ok", "risk_blocked"]
    for key in list_risk_keys():  # the window ends (Redis expires the counter)
        cache.delete(key)
    assert attempts(Checkpoint.LOGIN, 1, user_id=7) == ["ok"]


def list_risk_keys() -> list[str]:
    """The velocity counters of this process (the window's expiry, simulated by deleting them)."""
    backend: Any = getattr(cache, "_cache", None)
    if backend is not None and hasattr(backend, "get_client"):
        client = backend.get_client(write=True)
        prefix = f"{cache.key_prefix}:1:"
        return [key.decode()[len(prefix):] for key in client.scan_iter(match=f"{prefix}risk:v:*")]
    return []


def test_counter_keys_hold_no_personal_value() -> None:
    rule(checkpoint=Checkpoint.SMS, dimension=Dimension.PHONE, limit=5)
    attempts(Checkpoint.SMS, 1, phone=PHONE)
    for key in list_risk_keys():
        assert PHONE not in key


# --- amount ------------------------------------------------------------------------------------------------------

def test_an_amount_exactly_at_the_threshold_passes_and_one_fen_more_is_reviewed() -> None:
    rule(checkpoint=Checkpoint.TOPUP, kind=RuleKind.AMOUNT, amount_threshold="5000.00", action=Action.REVIEW)

    at = risk_check(checkpoint=Checkpoint.TOPUP, context=RiskContext(user_id=1, amount=Decimal("5000.00")))
    above = risk_check(checkpoint=Checkpoint.TOPUP, context=RiskContext(user_id=1, amount=Decimal("5000.01")))

    assert at.decision == Decision.ALLOW
    assert not at.is_review
    assert above.is_review
    assert above.decision_id is not None
    stored = RiskDecision.objects.get(pk=above.decision_id)
    assert (stored.decision, stored.inputs["amount"], stored.reviewed_at) == (Decision.REVIEW, "5000.01", None)


def test_an_amount_rule_blocks_one_fen_above() -> None:
    rule(checkpoint=Checkpoint.WITHDRAW, kind=RuleKind.AMOUNT, amount_threshold="2000.00")
    risk_check(checkpoint=Checkpoint.WITHDRAW, context=RiskContext(amount=Decimal("2000.00")))
    with pytest.raises(RiskBlockedError):
        risk_check(checkpoint=Checkpoint.WITHDRAW, context=RiskContext(amount=Decimal("2000.01")))


# --- refund frequency --------------------------------------------------------------------------------------------

def test_refund_frequency_three_in_seven_days() -> None:
    rule(checkpoint=Checkpoint.REFUND, kind=RuleKind.REFUND_FREQUENCY, limit=3, window_seconds=7 * 24 * 3600)
    asked: list[Any] = []

    def refunds_since(count: int) -> Any:
        def count_since(since: Any) -> int:
            asked.append(since)
            return count
        return count_since

    risk_check(checkpoint=Checkpoint.REFUND, context=RiskContext(user_id=3, extras={"refunds_since": refunds_since(2)}))
    with pytest.raises(RiskBlockedError):
        risk_check(checkpoint=Checkpoint.REFUND,
                   context=RiskContext(user_id=3, extras={"refunds_since": refunds_since(3)}))
    assert abs((timezone.now() - asked[0]) - timedelta(days=7)) < timedelta(seconds=5)


# --- blacklists --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "text", "context", "other"), [
    (BlacklistKind.IP, "203.0.113.7", {"ip": "203.0.113.7"}, {"ip": "203.0.113.8"}),
    (BlacklistKind.IP, "2001:db8:aa:bb::1", {"ip": "2001:db8:aa:bb:1:2:3:4"}, {"ip": "2001:db8:aa:bc::1"}),
    (BlacklistKind.CIDR, "10.20.0.0/16", {"ip": "10.20.255.1"}, {"ip": "10.21.0.1"}),
    (BlacklistKind.CIDR, "2001:db8:ff00::/40", {"ip": "2001:db8:ff12::5"}, {"ip": "2001:db8:fe00::5"}),
    (BlacklistKind.CIDR, "2001:db8:1::5/128", {"ip": "2001:db8:1::5"}, {"ip": "2001:db8:1::6"}),
    (BlacklistKind.DEVICE, "h:stolen-device-1", {"device_id": "h:stolen-device-1"}, {"device_id": "h:other-dev-1"}),
    (BlacklistKind.PHONE, PHONE, {"phone": PHONE}, {"phone": "13812345679"}),
    (BlacklistKind.ACCOUNT, "8", {"user_id": 8}, {"user_id": 9}),
    (BlacklistKind.ID_FINGERPRINT, id_number(), {"id_fingerprint": identity_index_of(id_number())},
     {"id_fingerprint": identity_index_of(id_number(sequence="125"))}),
])
def test_each_blacklist_kind_blocks_its_value_only(kind: str, text: str, context: dict[str, Any],
                                                    other: dict[str, Any]) -> None:
    rule(checkpoint=Checkpoint.ORDER, kind=RuleKind.BLACKLIST)
    blacklist_add(kind=kind, text=text, reason="测试")

    with pytest.raises(RiskBlockedError):
        risk_check(checkpoint=Checkpoint.ORDER, context=RiskContext(**context))
    risk_check(checkpoint=Checkpoint.ORDER, context=RiskContext(**other))


def test_an_expired_blacklist_entry_no_longer_blocks() -> None:
    rule(checkpoint=Checkpoint.LOGIN, kind=RuleKind.BLACKLIST)
    blacklist_add(kind=BlacklistKind.IP, text="203.0.113.7", expires_at=timezone.now() - timedelta(seconds=1))
    blacklist_add(kind=BlacklistKind.CIDR, text="10.0.0.0/8", expires_at=timezone.now() - timedelta(seconds=1))
    risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(ip="203.0.113.7"))
    risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(ip="10.1.2.3"))


def test_a_blacklist_rule_limited_to_one_dimension_ignores_the_others() -> None:
    rule(checkpoint=Checkpoint.LOGIN, kind=RuleKind.BLACKLIST, dimension=Dimension.PHONE)
    blacklist_add(kind=BlacklistKind.IP, text="203.0.113.7")
    risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(ip="203.0.113.7"))


def test_personal_blacklist_values_are_the_accounts_blind_indexes_never_plaintext() -> None:
    assert blacklist_module.PHONE_INDEX_CONTEXT == PHONE_CONTEXT
    assert blacklist_module.ID_NUMBER_INDEX_CONTEXT == REAL_NAME_ID_NUMBER_CONTEXT
    phone = blacklist_add(kind=BlacklistKind.PHONE, text=PHONE)
    person = blacklist_add(kind=BlacklistKind.ID_FINGERPRINT, text=id_number())
    device = blacklist_add(kind=BlacklistKind.DEVICE, text="h:stolen-device-1")

    assert phone.value == phone_index_of(PHONE).hex()
    assert phone.shown == "138****5678"
    assert person.value == identity_index_of(id_number()).hex()
    assert id_number() not in person.shown
    assert device.value == device_hash("h:stolen-device-1")


# --- decisions ---------------------------------------------------------------------------------------------------

def test_a_decision_is_stored_with_masked_inputs() -> None:
    rule(checkpoint=Checkpoint.SMS, dimension=Dimension.PHONE, limit=0, action=Action.BLOCK)
    number = id_number()
    with pytest.raises(RiskBlockedError):
        risk_check(checkpoint=Checkpoint.SMS, context=RiskContext(
            user_id=None, ip="2001:db8::5", device_id="h:device-0001", phone=PHONE, id_fingerprint=number))

    stored = RiskDecision.objects.get()
    text = str(stored.inputs) + stored.reason
    assert PHONE not in text
    assert number not in text
    assert "device-0001" not in text
    assert stored.inputs["phone"] == "138****5678"
    assert (stored.checkpoint, stored.decision, stored.rule_name) == (Checkpoint.SMS, Decision.BLOCK,
                                                                      "sms-velocity-phone")
    assert stored.ip == "2001:db8::5"
    assert stored.device_hash == device_hash("h:device-0001")


def test_require_sms_raises_its_own_code_unless_the_phone_was_just_proved() -> None:
    rule(checkpoint=Checkpoint.LOGIN, dimension=Dimension.IP, limit=0, action=Action.REQUIRE_SMS)
    with pytest.raises(SmsRequiredError) as asked:
        risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(ip="203.0.113.9"))
    assert (asked.value.code, asked.value.status_code) == ("sms_required", 403)
    result = risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(ip="203.0.113.9", is_sms_verified=True))
    assert result.decision == Decision.ALLOW


def test_the_first_blocking_rule_by_priority_decides() -> None:
    rule(checkpoint=Checkpoint.TOPUP, kind=RuleKind.AMOUNT, amount_threshold="10", action=Action.REVIEW, priority=1)
    second = rule(checkpoint=Checkpoint.TOPUP, kind=RuleKind.AMOUNT, amount_threshold="100", priority=2)
    with pytest.raises(RiskBlockedError):
        risk_check(checkpoint=Checkpoint.TOPUP, context=RiskContext(amount=Decimal("500")))
    assert RiskDecision.objects.get().rule_id == second.pk


def test_allow_decisions_at_the_order_checkpoint_are_not_stored_by_default() -> None:
    rule(checkpoint=Checkpoint.ORDER, kind=RuleKind.AMOUNT, amount_threshold="100")
    risk_check(checkpoint=Checkpoint.ORDER, context=RiskContext(amount=Decimal("5")))
    assert not RiskDecision.objects.filter(checkpoint=Checkpoint.ORDER).exists()


# --- failure policy ----------------------------------------------------------------------------------------------

def _cache_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**kwargs: Any) -> int:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(engine, "window_hit", broken)


@pytest.mark.parametrize("checkpoint", [Checkpoint.ORDER, Checkpoint.TOPUP, Checkpoint.WITHDRAW, Checkpoint.REFUND])
def test_a_failing_rule_fails_closed_at_money_checkpoints(monkeypatch: pytest.MonkeyPatch, checkpoint: str) -> None:
    rule(checkpoint=checkpoint, dimension=Dimension.ACCOUNT, limit=100)
    _cache_down(monkeypatch)
    with pytest.raises(RiskUnavailableError) as refused:
        risk_check(checkpoint=checkpoint, context=RiskContext(user_id=5))
    assert (refused.value.status_code, refused.value.code) == (503, "risk_unavailable")
    assert RiskDecision.objects.get().decision == Decision.ERROR


@pytest.mark.parametrize("checkpoint", [Checkpoint.REGISTER, Checkpoint.LOGIN, Checkpoint.SMS])
def test_a_failing_rule_fails_open_at_account_checkpoints(monkeypatch: pytest.MonkeyPatch, checkpoint: str) -> None:
    rule(checkpoint=checkpoint, dimension=Dimension.IP, limit=0)
    _cache_down(monkeypatch)
    result = risk_check(checkpoint=checkpoint, context=RiskContext(ip="203.0.113.9"))
    assert result.decision == Decision.ALLOW
    stored = RiskDecision.objects.get()
    assert "出错已跳过" in stored.reason


def test_unreadable_rules_fail_closed_for_money_and_open_for_logins(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Any:
        raise ConnectionError("cache and database down")

    monkeypatch.setattr(engine, "rules_snapshot", broken)
    with pytest.raises(RiskUnavailableError):
        risk_check(checkpoint=Checkpoint.ORDER, context=RiskContext(user_id=1))
    assert risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(user_id=1)).decision == Decision.ERROR


def test_the_real_cache_raising_inside_a_counter_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    rule(checkpoint=Checkpoint.TOPUP, dimension=Dimension.ACCOUNT, limit=100)

    def broken(**kwargs: Any) -> int:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(counters, "counter_hit", broken)
    monkeypatch.setattr(counters, "caches", {"default": object()})  # not Redis: the fallback path, which raises
    with pytest.raises(RiskUnavailableError):
        risk_check(checkpoint=Checkpoint.TOPUP, context=RiskContext(user_id=5))


# --- rule changes ------------------------------------------------------------------------------------------------

def test_a_rule_saved_in_the_admin_applies_at_the_next_check() -> None:
    assert risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(ip="203.0.113.9")).decision == Decision.ALLOW
    created = rule(checkpoint=Checkpoint.LOGIN, dimension=Dimension.IP, limit=0)
    with pytest.raises(RiskBlockedError):
        risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(ip="203.0.113.9"))
    created.is_enabled = False
    created.save()
    risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(ip="203.0.113.9"))


def test_another_processs_change_applies_within_the_check_interval(monkeypatch: pytest.MonkeyPatch,
                                                                   settings: Any) -> None:
    """Another process saved a rule: this one sees the new version at its next version check (no restart)."""
    settings.KAMENG_RISK_RULES_CHECK_SECONDS = 2.0
    clock = [1000.0]
    monkeypatch.setattr(rules.time, "monotonic", lambda: clock[0])
    risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(ip="203.0.113.9"))  # snapshot loaded: no rules
    RiskRule.objects.bulk_create([RiskRule(name="x", checkpoint=Checkpoint.LOGIN, kind=RuleKind.VELOCITY,
                                           dimension=Dimension.IP, limit=0)])  # no save(): this process is not told
    cache.set(rules.VERSION_KEY, "another-process-saved")  # …but the other process published a version

    clock[0] += 1.0
    risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(ip="203.0.113.9"))  # within the interval: old rules
    clock[0] += 1.5
    with pytest.raises(RiskBlockedError):
        risk_check(checkpoint=Checkpoint.LOGIN, context=RiskContext(ip="203.0.113.9"))


def test_no_enabled_rule_costs_no_query(django_assert_num_queries: Any) -> None:
    rule(checkpoint=Checkpoint.LOGIN, dimension=Dimension.IP, limit=5)  # another checkpoint's
    risk_check(checkpoint=Checkpoint.TOPUP, context=RiskContext(user_id=1))  # loads the snapshot
    with django_assert_num_queries(0):
        for _ in range(10):
            risk_check(checkpoint=Checkpoint.TOPUP, context=RiskContext(user_id=1, amount=Decimal("9")))
