"""The staff authenticator (TOTP) with its secret encrypted at rest.

django-otp's own `TOTPDevice` keeps the key as plain hex in its table; a copy of the database would then be enough to
produce every staff account's codes. `StaffTOTPDevice` has the same columns and behaviour, but the key goes through
`EncryptedTextField` (AES-256-GCM, kameng.core.crypto) like every other secret. django-otp 1.7 has no abstract TOTP
model, so the behaviour (verify_token with drift and replay protection, the otpauth:// URL, the throttle factor) is
django-otp's own functions, borrowed rather than copied: they only read the attributes declared here.

`StaffRecoveryCodes` is django-otp's static device (the recovery codes, kept hashed) under a Chinese name in the
账户 section of the back office, instead of an English "Otp_Static / Static devices" section.

django-otp's `otp_totp` app stays installed only because the migration that moved its rows here
(accounts/0006) reads its model; its table is left empty, and `manage.py plaintext_scan` reports any key found there.
"""

from __future__ import annotations

from binascii import unhexlify

from django.conf import settings
from django.db import models
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key

from kameng.core.fields import EncryptedTextField


class StaffTOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    # Declared here (Device's own has no related name) so the account's side is typed: user.staff_totp_devices.
    # django-otp's fields are declared again with Chinese names (the admin shows them); their behaviour is the same.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_totp_devices",
                             verbose_name="账号")
    name = models.CharField("名称", max_length=64)
    confirmed = models.BooleanField("已绑定", default=True)
    throttling_failure_timestamp = models.DateTimeField("上次错误时间", null=True, blank=True, default=None)
    throttling_failure_count = models.PositiveIntegerField("连续错误次数", default=0)
    created_at = models.DateTimeField("绑定时间", null=True, blank=True, auto_now_add=True)
    last_used_at = models.DateTimeField("上次使用", null=True, blank=True)
    key = EncryptedTextField("密钥", default=default_key, context="accounts.stafftotpdevice.key")  # hex, ≤ 40 bytes
    step = models.PositiveSmallIntegerField("步长（秒）", default=30)
    t0 = models.BigIntegerField("起始时间", default=0)
    digits = models.PositiveSmallIntegerField("位数", choices=[(6, 6), (8, 8)], default=6)
    tolerance = models.PositiveSmallIntegerField("容许偏差（步）", default=1)
    drift = models.SmallIntegerField("时钟偏移（步）", default=0)
    # The time step of the last code accepted: a code works once.
    last_t = models.BigIntegerField("上次验证的时间步", default=-1)

    class Meta(Device.Meta):
        verbose_name = "身份验证器"
        verbose_name_plural = "身份验证器"

    @property
    def bin_key(self) -> bytes:
        return unhexlify(str(self.key))  # the field decrypts to the hex text

    verify_token = TOTPDevice.verify_token
    get_throttle_factor = TOTPDevice.get_throttle_factor
    config_url = TOTPDevice.config_url
    _read_str_from_settings = TOTPDevice._read_str_from_settings


class StaffRecoveryCodes(StaticDevice):
    class Meta:
        proxy = True
        verbose_name = "恢复码"
        verbose_name_plural = "恢复码"
