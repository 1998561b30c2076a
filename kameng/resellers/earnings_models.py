"""The reseller money models of the earnings part (kameng.resellers.earnings, .referrals, .commission_withdrawals):
each user's invite code, the commission settings (one row, staff-edited) and commission withdrawals. Imported by
kameng/resellers/models.py so that Django and the migrations see them.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from kameng.core.fields import EncryptedTextField

# How many levels of the invitation chain a commission may reach at most (the settings' depth is 1..this).
MAX_COMMISSION_DEPTH = 5


class InviteCode(models.Model):
    """A user's invite code (邀请码), used in `?aff=<code>`: random, short, unique, never changes once made."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, verbose_name="用户", on_delete=models.CASCADE,
                                related_name="invite_code")
    code = models.CharField("邀请码", max_length=16, unique=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "邀请码"
        ordering = ["-pk"]

    def __str__(self) -> str:
        return self.code


def _rate(level: int, default: str) -> models.DecimalField:
    return models.DecimalField(f"第 {level} 级佣金比例（%）", max_digits=5, decimal_places=2, default=Decimal(default),
                               validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("50"))])


RATE_FIELDS = tuple(f"level_{level}_rate" for level in range(1, MAX_COMMISSION_DEPTH + 1))


class CommissionSettings(models.Model):
    """The commission rules (推广返利设置), one row (pk 1) edited by staff: how many levels of inviters earn, the
    percentage of the order's cash each level earns, and how long earnings wait before they are confirmed."""

    depth = models.PositiveSmallIntegerField("返佣层级", default=2,
                                             validators=[MinValueValidator(0),
                                                         MaxValueValidator(MAX_COMMISSION_DEPTH)],
                                             help_text="0 表示不返佣；最多 5 级")
    level_1_rate = _rate(1, "5.00")
    level_2_rate = _rate(2, "2.00")
    level_3_rate = _rate(3, "0.00")
    level_4_rate = _rate(4, "0.00")
    level_5_rate = _rate(5, "0.00")
    confirm_days = models.PositiveSmallIntegerField(
        "确认期（天）", null=True, blank=True, validators=[MaxValueValidator(365)],
        help_text="订单交付后多少天收益转为可用（分站利润入钱包、佣金入佣金余额）；留空按系统设置 "
                  "KAMENG_RESELLER_CONFIRM_DAYS")
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "推广返利设置"

    def __str__(self) -> str:
        return "推广返利设置"

    def clean(self) -> None:
        total = sum((getattr(self, name) or Decimal("0") for name in RATE_FIELDS[:self.depth or 0]), Decimal("0"))
        if total > Decimal("50"):
            raise ValidationError("各级佣金比例之和不能超过 50%%（当前为 %(total)s%%）", params={"total": total})

    @classmethod
    def current(cls) -> CommissionSettings:
        row, _ = cls.objects.get_or_create(pk=1)
        return row

    def rates(self) -> list[Decimal]:
        """The percentage of each level, level 1 first, as many as the depth."""
        return [getattr(self, name) for name in RATE_FIELDS[:self.depth]]

    def period_days(self) -> int:
        return self.confirm_days if self.confirm_days is not None else int(settings.KAMENG_RESELLER_CONFIRM_DAYS)


class ResellerWithdrawalStatus(models.TextChoices):
    REQUESTED = "requested", "待审核"
    PAID = "paid", "已打款"
    REJECTED = "rejected", "已驳回"


class ResellerWithdrawalDestination(models.TextChoices):
    BANK = "bank", "银行卡提现"
    WALLET = "wallet", "转入余额"


RESELLER_WITHDRAWAL_ACCOUNT_NAME_CONTEXT = "resellers.resellerwithdrawal.account_name"


class ResellerWithdrawal(models.Model):
    """Commission leaving a reseller's commission balance: to a bank account after staff review (the money left
    the balance at request; staff pay it by bank transfer outside the system and record the reference, or reject
    it and the money goes back), or into the reseller's own wallet at once (转入余额, recorded here as paid). The
    bank account number and the holder's name (户名, a person's) are encrypted at rest; both are shown in full only
    on the page where staff pay it."""

    number = models.CharField("提现单号", max_length=32, unique=True)
    reseller = models.ForeignKey("resellers.Reseller", verbose_name="代理商", on_delete=models.PROTECT,
                                 related_name="withdrawals")
    destination = models.CharField("去向", max_length=10, choices=ResellerWithdrawalDestination.choices,
                                   default=ResellerWithdrawalDestination.BANK)
    amount = models.DecimalField("金额", max_digits=14, decimal_places=2)
    bank_name = models.CharField("开户银行", max_length=100, blank=True, default="")
    account_name = EncryptedTextField("户名", blank=True, default="", context=RESELLER_WITHDRAWAL_ACCOUNT_NAME_CONTEXT)
    account_number = EncryptedTextField("银行账号（密文）", null=True, blank=True)
    status = models.CharField("状态", max_length=10, choices=ResellerWithdrawalStatus.choices,
                              default=ResellerWithdrawalStatus.REQUESTED, db_index=True)
    request_id = models.CharField("客户端请求号", max_length=64, null=True, blank=True)
    transfer_reference = models.CharField("转账流水号", max_length=100, blank=True, default="")
    rejection_reason = models.CharField("驳回原因", max_length=200, blank=True, default="")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="审核人", null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField("审核时间", null=True, blank=True)
    created_at = models.DateTimeField("申请时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "代理佣金提现"
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["reseller", "request_id"], name="resellers_withdrawal_unique_request"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="resellers_withdrawal_amount_positive",
                                   violation_error_message="提现金额必须大于 0"),
        ]

    def __str__(self) -> str:
        return self.number
