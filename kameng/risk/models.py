"""Risk control (风控): the events the platform saw and refused, and the rule engine's data — rules, blacklists,
the minors' limits and every decision taken (kameng.risk.engine reads and writes them).

Rules are data: staff add, change and switch them off in the admin, and every process picks a change up within
seconds (the rules' version in the cache is bumped on every save, kameng.risk.rules). Personal values are never
stored in clear here: phone numbers and ID numbers as keyed blind indexes (the same as kameng.accounts keeps, so
a user's stored index matches), device ids as keyed hashes, and decision inputs masked.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models


class RiskSeverity(models.TextChoices):
    INFO = "info", "提示"
    WARNING = "warning", "警告"
    CRITICAL = "critical", "严重"


class RiskEvent(models.Model):
    kind = models.CharField("类型", max_length=40, db_index=True)
    severity = models.CharField("级别", max_length=10, choices=RiskSeverity.choices, default=RiskSeverity.WARNING)
    message = models.CharField("说明", max_length=300)
    detail = models.JSONField("详情（已脱敏）", default=dict, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="相关用户", null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    remote_addr = models.GenericIPAddressField("来源 IP", null=True, blank=True)
    created_at = models.DateTimeField("时间", auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "风险事件"
        verbose_name_plural = "风险事件"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


# --- the rule engine's data (kameng.risk.engine) ------------------------------------------------------------------

class Checkpoint(models.TextChoices):
    REGISTER = "register", "注册"
    LOGIN = "login", "登录"
    SMS = "sms", "发送短信验证码"
    ORDER = "order", "下单"
    TOPUP = "topup", "钱包充值"
    WITHDRAW = "withdraw", "提现"
    REFUND = "refund", "退款"


class RuleKind(models.TextChoices):
    VELOCITY = "velocity", "频率限制"
    AMOUNT = "amount", "金额阈值"
    REFUND_FREQUENCY = "refund_frequency", "退款频率"
    BLACKLIST = "blacklist", "黑名单"
    MINORS = "minors", "未成年人限制（游戏类商品）"


class Dimension(models.TextChoices):
    IP = "ip", "IP（IPv6 按 /64 计）"
    DEVICE = "device", "设备"
    PHONE = "phone", "手机号"
    ACCOUNT = "account", "账号"
    ID_FINGERPRINT = "id_fingerprint", "身份证（指纹）"


class Action(models.TextChoices):
    ALLOW = "allow", "放行"
    REVIEW = "review", "放行并标记复核"
    BLOCK = "block", "拦截"
    REQUIRE_SMS = "require_sms", "要求短信验证"


class RiskRule(models.Model):
    """One rule at one checkpoint. What it counts or compares depends on its kind:

    - velocity: attempts at the checkpoint per `dimension` value in `window_seconds`; `limit` pass, one more
      triggers `action` (the attempt is counted whatever the outcome);
    - amount: the amount of the operation above `amount_threshold` triggers (exactly the threshold passes);
    - refund_frequency: the buyer's refunds in `window_seconds`; `limit` pass, one more triggers;
    - blacklist: the client's IP (CIDR ranges too), device, phone, account or ID fingerprint is blacklisted
      (`dimension` empty: any of them);
    - minors: the limits of 未成年人 for game goods, set in 未成年人限额 (MinorsPolicy).
    """

    name = models.CharField("规则名称", max_length=60)
    checkpoint = models.CharField("检查点", max_length=12, choices=Checkpoint.choices, db_index=True)
    kind = models.CharField("规则类型", max_length=20, choices=RuleKind.choices)
    dimension = models.CharField("计数维度", max_length=16, choices=Dimension.choices, blank=True,
                                 help_text="频率限制必填；黑名单可选（留空表示检查所有类型）")
    window_seconds = models.PositiveIntegerField("时间窗口（秒）", default=3600,
                                                 validators=[MinValueValidator(1)],
                                                 help_text="频率限制与退款频率使用，例如 3600 = 1 小时，604800 = 7 天")
    limit = models.PositiveIntegerField("窗口内允许次数", default=5,
                                        help_text="允许的次数；超过一次即触发动作")
    amount_threshold = models.DecimalField("金额阈值（元）", max_digits=12, decimal_places=2, null=True, blank=True,
                                           validators=[MinValueValidator(Decimal("0.00"))],
                                           help_text="金额阈值规则使用：高于此金额触发（等于不触发）")
    action = models.CharField("动作", max_length=12, choices=Action.choices, default=Action.BLOCK)
    is_enabled = models.BooleanField("启用", default=True)
    priority = models.IntegerField("优先级", default=100, help_text="数字小的先检查；先命中的拦截规则生效")
    message = models.CharField("提示用户的话", max_length=200, blank=True,
                               help_text="拦截或要求验证时显示给用户；留空使用默认提示")
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "风控规则"
        verbose_name_plural = "风控规则"
        ordering = ["checkpoint", "priority", "id"]

    def __str__(self) -> str:
        return f"{self.get_checkpoint_display()} · {self.name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        rules_changed()

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        deleted = super().delete(*args, **kwargs)
        rules_changed()
        return deleted

    def clean(self) -> None:
        super().clean()
        if self.kind == RuleKind.VELOCITY and not self.dimension:
            raise ValidationError({"dimension": "频率限制规则须选择计数维度（IP、设备、手机号、账号或身份证）"})
        if self.kind == RuleKind.AMOUNT and self.amount_threshold is None:
            raise ValidationError({"amount_threshold": "金额阈值规则须填写金额阈值"})
        if self.kind == RuleKind.MINORS and self.checkpoint != Checkpoint.ORDER:
            raise ValidationError({"checkpoint": "未成年人限制只用于「下单」检查点"})


class BlacklistKind(models.TextChoices):
    IP = "ip", "IP（IPv6 地址拉黑整个 /64）"
    CIDR = "cidr", "IP 段（CIDR）"
    DEVICE = "device", "设备"
    PHONE = "phone", "手机号"
    ACCOUNT = "account", "账号（用户 ID）"
    ID_FINGERPRINT = "id_fingerprint", "身份证号"


class BlacklistEntry(models.Model):
    """A blacklisted value. `value` is normalised (IP: the address, IPv6 its /64; CIDR: the network) or, for
    personal data, a keyed hash (phone and ID number: the blind index kameng.accounts keeps; device: the device
    hash). `shown` is what staff see: masked for personal data."""

    kind = models.CharField("类型", max_length=16, choices=BlacklistKind.choices)
    value = models.CharField("值（规范化或哈希）", max_length=128, editable=False)
    shown = models.CharField("显示值", max_length=64, editable=False)
    reason = models.CharField("原因", max_length=200, blank=True)
    expires_at = models.DateTimeField("过期时间", null=True, blank=True, help_text="留空表示永久")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="添加人", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+", editable=False)
    created_at = models.DateTimeField("添加时间", auto_now_add=True)

    class Meta:
        verbose_name = "黑名单"
        verbose_name_plural = "黑名单"
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="risk_blacklist_kind_value")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.shown}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        if self.kind == BlacklistKind.CIDR:  # ranges live in the rules' snapshot
            rules_changed()

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        deleted = super().delete(*args, **kwargs)
        rules_changed()
        return deleted


class MinorsPolicy(models.Model):
    """未成年人限额 for game goods (one row, pk 1; the defaults are the 2019 notice's). Ages are full years (周岁)
    from the verified ID number."""

    minimum_age = models.PositiveSmallIntegerField("最低年龄", default=8, help_text="未满此年龄不能购买")
    child_age = models.PositiveSmallIntegerField("低龄段上限", default=16,
                                                 help_text="最低年龄至此年龄（不含）适用低龄段限额")
    adult_age = models.PositiveSmallIntegerField("成年年龄", default=18)
    child_per_payment = models.DecimalField("低龄段单笔上限（元）", max_digits=10, decimal_places=2,
                                            default=Decimal("50.00"))
    child_per_month = models.DecimalField("低龄段每月上限（元）", max_digits=10, decimal_places=2,
                                          default=Decimal("200.00"))
    teen_per_payment = models.DecimalField("高龄段单笔上限（元）", max_digits=10, decimal_places=2,
                                           default=Decimal("100.00"))
    teen_per_month = models.DecimalField("高龄段每月上限（元）", max_digits=10, decimal_places=2,
                                         default=Decimal("400.00"))
    require_verification = models.BooleanField("未实名用户须先实名", default=True,
                                               help_text="购买游戏类商品前须完成实名认证")
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "未成年人限额"
        verbose_name_plural = "未成年人限额"

    def __str__(self) -> str:
        return "未成年人限额"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.pk = 1
        super().save(*args, **kwargs)
        rules_changed()

    def clean(self) -> None:
        super().clean()
        if not self.minimum_age <= self.child_age <= self.adult_age:
            raise ValidationError("年龄须满足：最低年龄 ≤ 低龄段上限 ≤ 成年年龄")


class Decision(models.TextChoices):
    ALLOW = "allow", "放行"
    REVIEW = "review", "复核"
    BLOCK = "block", "拦截"
    REQUIRE_SMS = "require_sms", "要求短信验证"
    ERROR = "error", "规则出错"


class RiskDecision(models.Model):
    """One decision of the engine: which checkpoint, what it decided, the rule that decided, the inputs (masked:
    never a clear phone or ID number), and who asked from where. Append-only."""

    checkpoint = models.CharField("检查点", max_length=12, choices=Checkpoint.choices)
    decision = models.CharField("结果", max_length=12, choices=Decision.choices)
    rule = models.ForeignKey(RiskRule, verbose_name="命中规则", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    rule_name = models.CharField("规则名称", max_length=60, blank=True)
    reason = models.CharField("原因", max_length=300, blank=True)
    inputs = models.JSONField("输入（已脱敏）", default=dict, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="用户", null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    ip = models.GenericIPAddressField("来源 IP", null=True, blank=True)
    device_hash = models.CharField("设备（哈希）", max_length=64, blank=True)
    created_at = models.DateTimeField("时间", auto_now_add=True)
    reviewed_at = models.DateTimeField("复核时间", null=True, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="复核人", null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = "风控决策"
        verbose_name_plural = "风控决策"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["checkpoint", "decision", "-created_at"], name="risk_decision_checkpoint"),
            models.Index(fields=["user", "-created_at"], name="risk_decision_user"),
            models.Index(fields=["ip", "-created_at"], name="risk_decision_ip"),
            models.Index(fields=["device_hash"], name="risk_decision_device"),
            models.Index(fields=["-created_at"], name="risk_decision_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_checkpoint_display()} · {self.get_decision_display()}"


def rules_changed() -> None:
    """Tell every process that rules, CIDR ranges or the minors' limits changed (kameng.risk.rules)."""
    from kameng.risk.rules import rules_version_bump  # the snapshot module imports these models

    rules_version_bump()
