"""Login forms' shared rule: a login past its failures is refused before any password check, saying why and for how
long (the storefront's login page and the back office's)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest

from kameng.accounts.selectors import user_by_login
from kameng.accounts.throttle import Lock, login_account, login_lock
from kameng.core.http import client_address


class ThrottledLoginMixin:
    """For an `AuthenticationForm`: `lock` is the lock that refused the login, if one did (the view answers 429)."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]
    lock: Lock | None = None

    def clean(self) -> dict[str, Any]:
        login = self.cleaned_data.get("username") or ""
        if login.strip():
            address = client_address(self.request) if self.request is not None else None
            account = login_account(login=login, user=user_by_login(login))
            self.lock = login_lock(account=account, address=address)
            if self.lock is not None:
                raise forms.ValidationError(self.lock.message(), code="too_many_attempts")
        cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        return cleaned


class StaffLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The back office's login (admin.site.login_form): the same counters as the storefront's, so a lock says so
    instead of reading as a wrong password."""
