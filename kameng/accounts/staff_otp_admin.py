"""Staff authenticators in the back office, in the admin's theme: who enrolled, when last used. Never the secret, and
no adding or editing here: an account enrols itself (/admin/otp/enrol/). Deleting an account's authenticator (a
lost phone) makes it enrol again at its next admin request; deleting its recovery codes leaves it without them
until it re-enrols. django-otp's own pages for these models (which show the secret as a QR code) are replaced."""

from __future__ import annotations

from typing import Any

# Imported first so that their registrations exist to be replaced (the admin imports them after this app's).
import django_otp.plugins.otp_static.admin
import django_otp.plugins.otp_totp.admin  # noqa: F401
from django.contrib import admin
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from unfold.admin import ModelAdmin
from unfold.decorators import display

from kameng.accounts.staff_models import StaffRecoveryCodes, StaffTOTPDevice


class StaffDeviceAdmin(ModelAdmin):
    # django-otp's fields have English names only: the columns and the page get theirs here.
    list_display = ("account", "device_name", "is_confirmed", "enrolled_at", "used_at")
    search_fields = ("user__username",)
    list_select_related = ("user",)
    fields = ("account", "device_name", "is_confirmed", "enrolled_at", "used_at", "failures")
    readonly_fields = fields

    @display(description="账号", ordering="user__username")
    def account(self, device: Any) -> str:
        return str(device.user)

    @display(description="名称")
    def device_name(self, device: Any) -> str:
        return str(device.name)

    @display(description="已绑定", boolean=True)
    def is_confirmed(self, device: Any) -> bool:
        return bool(device.confirmed)

    @display(description="绑定时间", ordering="created_at")
    def enrolled_at(self, device: Any) -> Any:
        return device.created_at

    @display(description="上次使用", ordering="last_used_at")
    def used_at(self, device: Any) -> Any:
        return device.last_used_at

    @display(description="连续错误次数")
    def failures(self, device: Any) -> int:
        return int(device.throttling_failure_count)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# django-otp's plain TOTPDevice is not used (its rows moved to StaffTOTPDevice, key encrypted), and its static device
# is shown under its Chinese name (StaffRecoveryCodes) in the 账户 section rather than as "Otp_Static".
for _model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
for _model in (StaffTOTPDevice, StaffRecoveryCodes):
    admin.site.register(_model, StaffDeviceAdmin)
