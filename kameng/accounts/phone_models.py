"""SMS verification codes (短信验证码): one row per code sent, never the code itself.

Rows rather than cache entries: a code's attempts and its single use must hold across a restart or a cache
eviction (a lost cache entry would hand an attacker a fresh attempt budget), and the rows are the record of what
was sent. The send limits (cooldown, per phone / address / device) are cache counters (kameng.accounts.phone_login).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class PhoneCodePurpose(models.TextChoices):
    # One purpose for logging in and registering: the first code a number receives makes its account. Binding a
    # number to an existing account and resetting a payment PIN will add theirs; a code is good for its own only.
    LOGIN = "login", "登录或注册"


class PhoneCode(models.Model):
    # Hex of the phone's keyed blind index (kameng.accounts.selectors.phone_index_of): the number itself is not here.
    phone_key = models.CharField("手机号索引", max_length=64, editable=False)
    purpose = models.CharField("用途", max_length=16, choices=PhoneCodePurpose.choices, editable=False)
    # Keyed HMAC of purpose, number and code under the blind-index key: a copy of the table alone cannot be turned
    # back into codes by trying the million candidates.
    code_hash = models.CharField("验证码摘要", max_length=64, editable=False)
    created_at = models.DateTimeField("发送时间", default=timezone.now, editable=False)
    expires_at = models.DateTimeField("过期时间", editable=False)
    attempts = models.PositiveSmallIntegerField("错误次数", default=0, editable=False)
    used_at = models.DateTimeField("使用时间", null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "短信验证码"
        verbose_name_plural = "短信验证码"
        indexes = [models.Index(fields=["phone_key", "purpose", "-created_at"], name="phone_code_lookup")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {self.created_at:%Y-%m-%d %H:%M:%S}"
