"""Accounts: one user model for buyers, resellers, suppliers and staff (roles are Django groups)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

from kameng.core.fields import EncryptedTextField
from kameng.core.money import ZERO

PHONE_CONTEXT = "accounts.user.phone"


class User(AbstractUser):
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
