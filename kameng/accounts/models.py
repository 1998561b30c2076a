"""Accounts: one user model for buyers, resellers, suppliers and staff (roles are Django groups)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

from kameng.core.fields import EncryptedTextField

PHONE_CONTEXT = "accounts.user.phone"


class User(AbstractUser):
    # The phone number is personal data: stored encrypted, found through its keyed blind index.
    phone = EncryptedTextField("手机号", null=True, blank=True, context=PHONE_CONTEXT)
    phone_index = models.BinaryField("手机号索引", max_length=32, null=True, blank=True, unique=True, editable=False)

    class Meta:
        verbose_name = "用户"
        verbose_name_plural = "用户"

    def __str__(self) -> str:
        return self.username


# SMS codes live in their own module (and migration); imported here so Django finds the model.
from kameng.accounts.phone_models import PhoneCode, PhoneCodePurpose  # noqa: E402

__all__ = ["PHONE_CONTEXT", "PhoneCode", "PhoneCodePurpose", "User"]
