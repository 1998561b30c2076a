"""The risk engine (风控): one service, `risk_check(checkpoint=…, context=…)`, that every flow calls at its named
checkpoint; the rules are data (kameng.risk.models.RiskRule, edited in the admin, kameng.risk.rules).

Checkpoints and where they are called (one call each):
- register  kameng.accounts.services.user_register and a phone login that registers a number
- login     the password login forms (kameng.accounts.forms.ThrottledLoginMixin) and the phone logins
            (kameng.accounts.phone_login) — both through kameng.accounts.services.login_risk_check
- sms       kameng.accounts.phone_login.phone_code_send, before a code is sent
- order     kameng.purchases.services.purchase_create, before any order exists (the storefront, the JSON API, the
            Open API and gateway payments all go through it)
- topup     kameng.payments.services.wallet_topup_start, before the payment row exists
- withdraw  kameng.suppliers.withdrawals.supplier_withdrawal_request; resellers' withdrawals call the same
            checkpoint (`risk_check(checkpoint="withdraw", …)`) before any money moves
- refund    kameng.payments.refunds.order_refund (the refund of an order, with the buyer as subject), before any
            money moves, and kameng.after_sales.services.after_sales_request_create when a buyer asks for one
            (售后申请: refund frequency counts their requests as well as refunds)

What a decision means:
- allow: nothing happens (stored, except at `order` where only a sample is: KAMENG_RISK_ORDER_ALLOW_SAMPLE_RATE).
- review: the flow continues; the decision is stored as 待复核 and logged at WARNING for staff, who find it in the
  admin (风控决策, filter 待复核) and mark it reviewed. For a withdrawal this adds to the staff review every
  withdrawal gets anyway; the result's `is_review` lets a caller hold something more if it wants.
- block: RiskBlockedError (403, code `risk_blocked`) with the rule's message or a clear default; the minors' rule
  says which limit, and asks an unverified buyer to verify first (RealNameRequiredError, code
  `realname_required`, 403, `extra.url` the real-name page).
- require_sms: SmsRequiredError (403, code `sms_required`): the front door asks for an SMS code. A context that
  already proved the phone (`is_sms_verified`, the phone logins) passes. The storefront's password login answers
  it by switching to the SMS tab.

Failure policy: a rule that errors (the cache down, the database unreachable, bad data) fails CLOSED at the money
checkpoints — order, topup, withdraw, refund: RiskUnavailableError (503 with retry_after, nothing written) — and
OPEN at register, login and sms: the rule is skipped, logged, and the decision stored says so. The reason: money
that leaves wrongly is lost, a login refused while Redis restarts locks every buyer out of the shop.

Cost: with no enabled rule at a checkpoint, a check reads the process's rule snapshot and returns — no query, no
cache call (a cache read every few seconds checks the rules' version). Velocity rules cost one cache round trip
each (kameng.risk.counters), a blacklist rule one indexed query, amount rules nothing, the minors' rule what the
caller's lazy facts cost (only for game goods).
"""

from __future__ import annotations

import ipaddress
import logging
import random
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from kameng.core.crypto import blind_index
from kameng.core.device import device_hash
from kameng.core.errors import ApplicationError
from kameng.core.masking import mask_phone
from kameng.core.money import money
from kameng.risk.blacklist import (
    HEX_64_RE,
    blacklist_match,
    id_number_fingerprint,
    ip_value,
    phone_fingerprint,
)
from kameng.risk.counters import window_hit
from kameng.risk.models import Action, BlacklistKind, Checkpoint, Decision, Dimension, RiskDecision, RuleKind
from kameng.risk.rules import MinorsLimits, RuleSpec, Snapshot, rules_snapshot

logger = logging.getLogger("kameng.risk")

MONEY_CHECKPOINTS = frozenset({Checkpoint.ORDER, Checkpoint.TOPUP, Checkpoint.WITHDRAW, Checkpoint.REFUND})
COUNTER_CONTEXT = "risk.counter"
BLOCKED_MESSAGE = "您的操作存在风险，已被系统拦截。如有疑问请联系客服"
SMS_REQUIRED_MESSAGE = "为保障账号安全，请使用短信验证码完成验证"
UNAVAILABLE_MESSAGE = "风控服务暂时不可用，请稍后重试"
REALNAME_REQUIRED_MESSAGE = "购买游戏类商品前请先完成实名认证"
MINORS_UNDER_MINIMUM_MESSAGE = "根据未成年人保护相关规定，未满 %(age)s 周岁的用户不能购买游戏类商品"
MINORS_PER_PAYMENT_MESSAGE = "根据未成年人保护相关规定，未满 %(age)s 周岁的用户购买游戏类商品单笔不能超过 ¥%(limit)s"
MINORS_PER_MONTH_MESSAGE = ("根据未成年人保护相关规定，未满 %(age)s 周岁的用户每月购买游戏类商品累计不能超过 ¥%(limit)s"
                            "（本月已购 ¥%(spent)s）")
SEVERITY: dict[str, int] = {Action.ALLOW: 0, Action.REVIEW: 1, Action.REQUIRE_SMS: 2, Action.BLOCK: 3}


class RiskBlockedError(ApplicationError):
    status_code = 403


class RealNameRequiredError(RiskBlockedError):
    pass


class SmsRequiredError(ApplicationError):
    status_code = 403


class RiskUnavailableError(ApplicationError):
    status_code = 503


@dataclass
class RiskContext:
    """Who asks, from where, for how much. `device_id` is the raw id (kameng.core.device.risk_device_id), hashed
    before it is stored or counted; `id_fingerprint` an ID number's blind index (bytes or hex) or the number.

    `extras` holds facts some rules need; a value may be a function of no arguments, called the first time a rule
    asks (so a fact that costs a query costs it only when a rule needs it). Known facts: `amount` (when not given
    as `amount`), `is_game_goods`, `age` (None: not verified), `month_spent` (game goods this calendar month),
    `phone_fingerprint` / `id_fingerprint` (hex blind indexes, when `phone` / `id_fingerprint` are not given),
    and `refunds_since` (a function of a datetime: the subject's refunds since then).
    """

    user_id: int | None = None
    ip: str | None = None
    device_id: str | None = None
    phone: str | None = None
    id_fingerprint: bytes | str | None = None
    amount: Decimal | None = None
    is_sms_verified: bool = False
    extras: dict[str, Any] = field(default_factory=dict)
    _facts: dict[str, Any] = field(default_factory=dict, repr=False)

    def fact(self, name: str) -> Any:
        if name not in self._facts:
            value = self.extras.get(name)
            self._facts[name] = value() if callable(value) and name != "refunds_since" else value
        return self._facts[name]

    def amount_value(self) -> Decimal | None:
        value = self.amount if self.amount is not None else self.fact("amount")
        return None if value is None else money(value)

    def dimension_value(self, dimension: str) -> str | None:
        """The value a velocity rule counts under (hashed where personal), None when the context has none."""
        if dimension == Dimension.IP:
            return ip_value(self.ip) if self.ip else None
        if dimension == Dimension.DEVICE:
            return device_hash(self.device_id) if self.device_id else None
        if dimension == Dimension.PHONE:
            return phone_fingerprint(self.phone) if self.phone else self.fact("phone_fingerprint")
        if dimension == Dimension.ACCOUNT:
            return str(self.user_id) if self.user_id is not None else None
        if dimension == Dimension.ID_FINGERPRINT:
            return self.id_fingerprint_hex()
        return None

    def id_fingerprint_hex(self) -> str | None:
        value = self.id_fingerprint
        if not value:
            return self.fact("id_fingerprint")
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value).hex()
        return value.lower() if HEX_64_RE.match(value.lower()) else id_number_fingerprint(value)


@dataclass(frozen=True)
class RiskResult:
    checkpoint: str
    decision: str
    rule_id: int | None = None
    rule_name: str = ""
    reason: str = ""
    decision_id: int | None = None

    @property
    def is_review(self) -> bool:
        return self.decision == Decision.REVIEW


@dataclass
class _Hit:
    rule: RuleSpec
    action: str
    reason: str
    message: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    error: type[ApplicationError] | None = None
    inputs: dict[str, Any] = field(default_factory=dict)


def _counter_key(rule: RuleSpec, value: str) -> str:
    hashed = blind_index(value, context=COUNTER_CONTEXT).hex()[:40]
    return f"risk:v:{rule.id}:{rule.window_seconds}:{hashed}"


def _velocity(rule: RuleSpec, context: RiskContext, snapshot: Snapshot) -> _Hit | None:
    value = context.dimension_value(rule.dimension)
    if value is None:
        return None
    count = window_hit(key=_counter_key(rule, value), window=rule.window_seconds)
    if count <= rule.limit:
        return None
    return _Hit(rule, rule.action,
                f"{rule.dimension} 在 {rule.window_seconds} 秒内第 {count} 次（允许 {rule.limit} 次）",
                inputs={"count": count})


def _amount(rule: RuleSpec, context: RiskContext, snapshot: Snapshot) -> _Hit | None:
    amount = context.amount_value()
    if amount is None or rule.amount_threshold is None or amount <= rule.amount_threshold:
        return None
    return _Hit(rule, rule.action, f"金额 ¥{amount} 高于阈值 ¥{rule.amount_threshold}")


def _refund_frequency(rule: RuleSpec, context: RiskContext, snapshot: Snapshot) -> _Hit | None:
    refunds_since: Callable[[Any], int] | None = context.extras.get("refunds_since")
    if refunds_since is None:
        return None
    earlier = int(refunds_since(timezone.now() - timedelta(seconds=rule.window_seconds)))
    if earlier < rule.limit:
        return None
    return _Hit(rule, rule.action, f"{rule.window_seconds} 秒内已有 {earlier} 次退款（允许 {rule.limit} 次）",
                inputs={"refunds": earlier})


def _blacklist(rule: RuleSpec, context: RiskContext, snapshot: Snapshot) -> _Hit | None:
    wanted = rule.dimension
    candidates: list[tuple[str, str]] = []
    address = ip_value(context.ip) if context.ip else None
    if address is not None and context.ip and wanted in ("", Dimension.IP):
        ip = ipaddress.ip_address(context.ip.strip())
        now = timezone.now().timestamp()
        for cidr in snapshot.cidrs:
            if (cidr.expires_at is None or cidr.expires_at > now) and ip.version == cidr.network.version \
                    and ip in cidr.network:
                return _Hit(rule, rule.action, f"IP 在黑名单 IP 段 {cidr.network} 内（{cidr.reason}）"[:300])
        candidates.append((BlacklistKind.IP, address))
    for dimension, kind in ((Dimension.DEVICE, BlacklistKind.DEVICE), (Dimension.PHONE, BlacklistKind.PHONE),
                            (Dimension.ACCOUNT, BlacklistKind.ACCOUNT),
                            (Dimension.ID_FINGERPRINT, BlacklistKind.ID_FINGERPRINT)):
        if wanted in ("", dimension):
            value = context.dimension_value(dimension)
            if value is not None:
                candidates.append((kind, value))
    entry = blacklist_match(candidates)
    if entry is None:
        return None
    return _Hit(rule, rule.action, f"{entry.get_kind_display()} {entry.shown} 在黑名单中（{entry.reason}）"[:300])


def _minors(rule: RuleSpec, context: RiskContext, snapshot: Snapshot) -> _Hit | None:
    if not context.fact("is_game_goods"):
        return None
    limits = snapshot.minors
    age = context.fact("age")
    if age is None:
        if not limits.require_verification:
            return None
        return _Hit(rule, rule.action, "未实名用户购买游戏类商品", message=REALNAME_REQUIRED_MESSAGE,
                    error=RealNameRequiredError, inputs={"age": None})
    age = int(age)
    if age >= limits.adult_age:
        return None
    if age < limits.minimum_age:
        return _Hit(rule, rule.action, f"{age} 岁，未满 {limits.minimum_age} 岁", message=MINORS_UNDER_MINIMUM_MESSAGE,
                    params={"age": limits.minimum_age}, inputs={"age": age})
    return _minors_limits(rule, context, limits, age)


def _minors_limits(rule: RuleSpec, context: RiskContext, limits: MinorsLimits, age: int) -> _Hit | None:
    """Between the minimum age and adulthood: the band's limit per payment, then per calendar month."""
    below, per_payment, per_month = ((limits.child_age, limits.child_per_payment, limits.child_per_month)
                                     if age < limits.child_age
                                     else (limits.adult_age, limits.teen_per_payment, limits.teen_per_month))
    amount = context.amount_value() or Decimal("0.00")
    if amount > per_payment:
        return _Hit(rule, rule.action, f"{age} 岁，单笔 ¥{amount} 超过 ¥{per_payment}",
                    message=MINORS_PER_PAYMENT_MESSAGE, params={"age": below, "limit": per_payment},
                    inputs={"age": age, "amount": str(amount)})
    spent = money(context.fact("month_spent") or 0)
    if spent + amount > per_month:
        return _Hit(rule, rule.action, f"{age} 岁，本月已购 ¥{spent}，加本单 ¥{amount} 超过 ¥{per_month}",
                    message=MINORS_PER_MONTH_MESSAGE, params={"age": below, "limit": per_month, "spent": spent},
                    inputs={"age": age, "amount": str(amount), "month_spent": str(spent)})
    return None


EVALUATORS: dict[str, Callable[[RuleSpec, RiskContext, Snapshot], _Hit | None]] = {
    RuleKind.VELOCITY: _velocity,
    RuleKind.AMOUNT: _amount,
    RuleKind.REFUND_FREQUENCY: _refund_frequency,
    RuleKind.BLACKLIST: _blacklist,
    RuleKind.MINORS: _minors,
}


def _masked_inputs(context: RiskContext, hit: _Hit | None) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    if context.phone:
        inputs["phone"] = mask_phone(context.phone)
    fingerprint = context.id_fingerprint_hex() if context.id_fingerprint else None
    if fingerprint:
        inputs["id_fingerprint"] = fingerprint[:12]
    if context.amount is not None:
        inputs["amount"] = str(money(context.amount))
    for name in ("amount", "is_game_goods", "age", "month_spent"):
        if name in context._facts and context._facts[name] is not None and name not in inputs:
            value = context._facts[name]
            inputs[name] = value if isinstance(value, bool | int) else str(value)
    if context.is_sms_verified:
        inputs["sms_verified"] = True
    if hit is not None:
        inputs.update(hit.inputs)
    return inputs


def _valid_ip(address: str | None) -> str | None:
    if not address:
        return None
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _store(checkpoint: str, decision: str, context: RiskContext, hit: _Hit | None, reason: str) -> int | None:
    """Write the decision; a failure to write is logged, never the caller's failure (the decision stands)."""
    try:
        # Inside the caller's transaction a failed INSERT must not break it: a savepoint (outside one, none).
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            row = RiskDecision.objects.create(
                checkpoint=checkpoint, decision=decision, rule_id=hit.rule.id if hit else None,
                rule_name=hit.rule.name[:60] if hit else "", reason=reason[:300],
                inputs=_masked_inputs(context, hit), user_id=context.user_id, ip=_valid_ip(context.ip),
                device_hash=device_hash(context.device_id) if context.device_id else "")
    except Exception:
        logger.exception("could not store a risk decision (%s, %s)", checkpoint, decision)
        return None
    return row.pk


def _unavailable(checkpoint: str, context: RiskContext, error: Exception) -> RiskUnavailableError:
    logger.error("risk check at %s failed closed: %r", checkpoint, error)
    return RiskUnavailableError(UNAVAILABLE_MESSAGE, code="risk_unavailable", extra={"retry_after": 5})


def _realname_url() -> str:
    try:
        return reverse("web:realname")
    except NoReverseMatch:
        return ""


def _raise_for(hit: _Hit, checkpoint: str, decision_id: int | None) -> None:
    extra: dict[str, Any] = {"checkpoint": checkpoint}
    if decision_id is not None:
        extra["decision"] = decision_id
    if hit.action == Action.REQUIRE_SMS:
        raise SmsRequiredError(hit.rule.message or SMS_REQUIRED_MESSAGE, code="sms_required", extra=extra)
    if hit.error is RealNameRequiredError:
        raise RealNameRequiredError(hit.rule.message or REALNAME_REQUIRED_MESSAGE, code="realname_required",
                                    extra={**extra, "url": _realname_url()})
    if hit.message:
        raise RiskBlockedError(hit.message, code="risk_blocked", params=hit.params or None, extra=extra)
    raise RiskBlockedError(hit.rule.message or BLOCKED_MESSAGE, code="risk_blocked", extra=extra)


def _should_store_allow(checkpoint: str) -> bool:
    if checkpoint != Checkpoint.ORDER:
        return True
    rate = float(settings.KAMENG_RISK_ORDER_ALLOW_SAMPLE_RATE)
    return rate > 0 and random.random() < rate  # noqa: S311 - sampling, not security


def risk_check(*, checkpoint: str, context: RiskContext) -> RiskResult:
    """Apply the enabled rules of `checkpoint` to `context`, store the decision and answer it (see the module
    docstring). Raises RiskBlockedError / RealNameRequiredError / SmsRequiredError (403) or, when a rule errors
    at a money checkpoint, RiskUnavailableError (503)."""
    fails_closed = checkpoint in MONEY_CHECKPOINTS
    try:
        snapshot = rules_snapshot()
    except Exception as error:
        if fails_closed:
            raise _unavailable(checkpoint, context, error) from error
        logger.exception("risk rules unreadable at %s: failing open", checkpoint)
        return RiskResult(checkpoint=checkpoint, decision=Decision.ERROR, reason="规则读取失败，放行")
    rules = snapshot.rules.get(checkpoint)
    if not rules:
        return RiskResult(checkpoint=checkpoint, decision=Decision.ALLOW)

    hits, failed = _evaluate(checkpoint, rules, context, snapshot, fails_closed=fails_closed)
    return _decide(checkpoint, context, hits, failed)


def _evaluate(checkpoint: str, rules: tuple[RuleSpec, ...], context: RiskContext, snapshot: Snapshot, *,
              fails_closed: bool) -> tuple[list[_Hit], list[str]]:
    """The rules in priority order, up to the first that blocks: (hits, names of rules that failed open)."""
    hits: list[_Hit] = []
    failed: list[str] = []
    for rule in rules:
        try:
            hit = EVALUATORS[rule.kind](rule, context, snapshot)
        except ApplicationError:
            raise  # a caller's fact said no (the SKU is gone…): its own answer, not a rule failure
        except Exception as error:
            if fails_closed:
                _store(checkpoint, Decision.ERROR, context, None, f"规则「{rule.name}」出错：{type(error).__name__}")
                raise _unavailable(checkpoint, context, error) from error
            logger.exception("risk rule %s (%s) failed at %s: skipped (fail open)", rule.id, rule.name, checkpoint)
            failed.append(rule.name)
            continue
        if hit is None:
            continue
        if hit.action == Action.REQUIRE_SMS and context.is_sms_verified:
            continue  # the phone was just proved by a code
        hits.append(hit)
        if hit.action == Action.BLOCK:
            break
    return hits, failed


def _decide(checkpoint: str, context: RiskContext, hits: list[_Hit], failed: list[str]) -> RiskResult:
    top = max(hits, key=lambda candidate: SEVERITY[candidate.action], default=None)  # the first of the most severe
    decision = Decision(top.action) if top is not None else Decision.ALLOW
    reason = top.reason if top is not None else ""
    if failed:
        reason = (reason + "；" if reason else "") + "出错已跳过：" + "、".join(failed)
    decision_id = None
    if decision != Decision.ALLOW or failed or _should_store_allow(checkpoint):
        decision_id = _store(checkpoint, decision, context, top, reason)
    if top is None or decision == Decision.ALLOW:
        return RiskResult(checkpoint=checkpoint, decision=Decision.ALLOW, reason=reason, decision_id=decision_id)
    if decision == Decision.REVIEW:
        logger.warning("risk review at %s: rule %s (%s): %s; user %s", checkpoint, top.rule.id, top.rule.name,
                       reason, context.user_id)
        return RiskResult(checkpoint=checkpoint, decision=decision, rule_id=top.rule.id, rule_name=top.rule.name,
                          reason=reason, decision_id=decision_id)
    logger.info("risk %s at %s: rule %s (%s): %s", decision, checkpoint, top.rule.id, top.rule.name, reason)
    _raise_for(top, checkpoint, decision_id)
    raise AssertionError("unreachable")  # pragma: no cover
