"""The back office's door for staff: a verified second factor, and a shorter idle timeout.

For every request under /admin/ from a logged-in staff account (is_staff):
- idle longer than KAMENG_STAFF_SESSION_IDLE_SECONDS since its last admin request: logged out, back to the login;
  the session is also set to expire after that long (buyers' sessions keep Django's SESSION_COOKIE_AGE);
- not verified with a confirmed TOTP device or a recovery code in this session: sent to the code page, or to the
  enrolment page if the account has no authenticator yet — before any admin page, the index included.

Only the admin's paths pay for this (one session read, one device query): storefront and API requests pass by.
The login, logout and the 2FA pages themselves are exempt, as are non-staff visitors (the admin sends them to
its login as ever).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from kameng.accounts.staff_otp import staff_has_device, staff_verified_device

ADMIN_PREFIX = "/admin/"
STAFF_OTP_PREFIX = "/admin/otp/"
# The session's last admin request (epoch seconds); written at most once a minute, so an admin page does not save
# the session on every request.
SEEN_SESSION_KEY = "staff_seen_at"
SEEN_WRITE_EVERY_SECONDS = 60


def _exempt(path: str) -> bool:
    return path.startswith(STAFF_OTP_PREFIX) or path in (reverse("admin:login"), reverse("admin:logout"))


class StaffSecurityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(ADMIN_PREFIX):
            return self.get_response(request)
        user = request.user
        if not (user.is_authenticated and user.is_staff):
            return self.get_response(request)
        expired = self._idle_check(request)
        if expired is not None:
            return expired
        if _exempt(request.path_info):
            return self.get_response(request)
        device = staff_verified_device(request)
        if device is None:
            target = "staff_otp:verify" if staff_has_device(user) else "staff_otp:enrol"
            return HttpResponseRedirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
        user.otp_device = device  # type: ignore[attr-defined]  # as django-otp's OTPMiddleware sets it
        return self.get_response(request)

    @staticmethod
    def _idle_check(request: HttpRequest) -> HttpResponse | None:
        now = int(time.time())
        idle = settings.KAMENG_STAFF_SESSION_IDLE_SECONDS
        seen = request.session.get(SEEN_SESSION_KEY)
        if isinstance(seen, int) and now - seen > idle:
            logout(request)
            messages.warning(request, "后台长时间未操作，已自动退出，请重新登录")
            login_url = reverse("admin:login")
            return HttpResponseRedirect(f"{login_url}?{urlencode({'next': request.get_full_path()})}")
        if not isinstance(seen, int) or now - seen >= SEEN_WRITE_EVERY_SECONDS:
            request.session[SEEN_SESSION_KEY] = now
            request.session.set_expiry(idle)
        return None
