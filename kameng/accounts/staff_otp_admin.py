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

from kameng.accounts.staff_models import StaffTOTPDevice


class StaffDeviceAdmin(ModelAdmin):
    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    list_filter = ("confirmed",)
    search_fields = ("user__username",)
    list_select_related = ("user",)
    fields = ("user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# django-otp's plain TOTPDevice is not used (its rows moved to StaffTOTPDevice, key encrypted): not shown at all.
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)
for _model in (StaffTOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, StaffDeviceAdmin)
