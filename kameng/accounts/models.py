"""Accounts: one user model for buyers, resellers, suppliers and staff (roles are Django groups)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

from kameng.core.fields import EncryptedTextField
from kameng.core.money import ZERO

PHONE_CONTEXT = "accounts.user.phone"


# django-stubs cannot type the staff authenticator's relation (its model's bases are django-otp's, untyped).
class User(AbstractUser):  # type: ignore[django-manager-missing]
    # The phone number is personal data: stored encrypted, found through its keyed blind index.
    phone = EncryptedTextField("手机号", null=True, blank=True, context=PHONE_CONTEXT)
    phone_index = models.BinaryField("手机号索引", max_length=32, null=True, blank=True, unique=True, editable=False)
    # The payment PIN and password-free payment (kameng.accounts.paypin). On the user row so that the session's
    # user, loaded by every request anyway, says whether a wallet payment needs a PIN without another query.
    payment_pin = models.CharField("支付密码", max_length=128, blank=True, default="", editable=False)
    password_free_limit = models.DecimalField("免密支付额度", max_digits=12, decimal_places=2, default=ZERO,
                                              editable=False)
    payment_pin_failures = models.PositiveSmallIntegerField("支付密码连续错误次数", default=0, editable=False)
    payment_pin_locked_until = models.DateTimeField("支付密码锁定至", null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "用户"
        verbose_name_plural = "用户"

    def __str__(self) -> str:
        return self.username


REAL_NAME_NAME_CONTEXT = "accounts.realname.name"
REAL_NAME_ID_NUMBER_CONTEXT = "accounts.realname.id_number"


class RealNameStatus(models.TextChoices):
    UNVERIFIED = "unverified", "未认证"
    PENDING = "pending", "认证中"
    VERIFIED = "verified", "已认证"
    REJECTED = "rejected", "未通过"


class RealName(models.Model):
    """An account's real-name verification (实名): at most one per user, for a buyer or a supplier's legal person.

    The name and ID number are kept only once verified, encrypted; a refused attempt keeps only why it was refused.
    Nothing else about the person is stored: the birth date (and so the age) is read from the ID number.

    One person may verify KAMENG_REALNAME_ACCOUNTS_PER_IDENTITY accounts: a verified row takes one of that many
    numbered slots of its ID number's blind index, and (id_number_index, identity_slot) is unique, so the database
    refuses one more even when two accounts verify the same person at once. Rows not verified have no slot (NULL
    never collides), which keeps the rule to verified rows without a partial index.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="real_name", verbose_name="用户")
    status = models.CharField("状态", max_length=12, choices=RealNameStatus.choices,
                              default=RealNameStatus.UNVERIFIED)
    name = EncryptedTextField("姓名", null=True, blank=True, context=REAL_NAME_NAME_CONTEXT)
    id_number = EncryptedTextField("身份证号", null=True, blank=True, context=REAL_NAME_ID_NUMBER_CONTEXT)
    id_number_index = models.BinaryField("身份证号索引", max_length=32, null=True, blank=True, editable=False)
    identity_slot = models.PositiveSmallIntegerField("同一身份的账号序号", null=True, blank=True, editable=False)
    provider = models.CharField("核验服务", max_length=20, blank=True)
    provider_request_id = models.CharField("核验请求号", max_length=64, blank=True)
    rejection_code = models.CharField("未通过原因", max_length=40, blank=True)
    verified_at = models.DateTimeField("认证时间", null=True, blank=True)
    pending_since = models.DateTimeField("开始核验时间", null=True, blank=True)
    attempts_day = models.DateField("尝试日期", null=True, blank=True)
    attempts = models.PositiveSmallIntegerField("当日尝试次数", default=0)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "实名认证"
        verbose_name_plural = "实名认证"
        constraints = [
            models.UniqueConstraint(fields=["id_number_index", "identity_slot"], name="realname_identity_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_status_display()}"


# SMS codes and the staff authenticator live in their own modules; imported here so Django finds the models.
from kameng.accounts.phone_models import PhoneCode, PhoneCodePurpose  # noqa: E402, F401
from kameng.accounts.staff_models import StaffRecoveryCodes, StaffTOTPDevice  # noqa: E402, F401
