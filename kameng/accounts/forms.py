"""Forms' shared rules: a login past its failures is refused before any password check, saying why and for how long
(the storefront's login page and the back office's), and so is one risk control refuses (the login checkpoint,
kameng.accounts.services.login_risk_check); a form asking for the real name fills it in once verified."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest

from kameng.accounts.identity import mask_name
from kameng.accounts.selectors import user_by_login, verified_name_of
from kameng.accounts.services import login_risk_check
from kameng.accounts.throttle import LOGIN_LOCK_ATTRIBUTE, Lock, login_account, login_lock
from kameng.core.device import risk_device_id
from kameng.core.errors import ApplicationError
from kameng.core.http import client_address


class ThrottledLoginMixin:
    """For an `AuthenticationForm`: `lock` is the lock that refused the login, if one did (the view answers 429);
    `risk_error` what risk control answered when it refused (403; `sms_required`: the view offers the SMS login)."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]
    lock: Lock | None = None
    risk_error: ApplicationError | None = None

    def clean(self) -> dict[str, Any]:
        login = self.cleaned_data.get("username") or ""
        if login.strip():
            address = client_address(self.request) if self.request is not None else None
            user = user_by_login(login)
            account = login_account(login=login, user=user)
            self.lock = login_lock(account=account, address=address)
            if self.lock is not None:
                raise forms.ValidationError(self.lock.message(), code="too_many_attempts")
            try:
                login_risk_check(user=user, phone=login.strip() if login.strip().isdigit() else None,
                                 address=address,
                                 device=risk_device_id(self.request) if self.request is not None else None)
            except ApplicationError as error:
                self.risk_error = error
                raise forms.ValidationError(error.message, code=error.code) from error
        try:
            cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        except forms.ValidationError:
            # Refused by a lock reached while this try was on its way (tries at once): say so, not "wrong password".
            self.lock = getattr(self.request, LOGIN_LOCK_ATTRIBUTE, None)
            if self.lock is not None:
                raise forms.ValidationError(self.lock.message(), code="too_many_attempts") from None
            raise
        return cleaned


class StaffLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The back office's login (admin.site.login_form): the same counters as the storefront's, so a lock says so
    instead of reading as a wrong password."""


class RealNameAutofillMixin:
    """For a form with a real-name field (`real_name_field`): once the account's real name is verified, the field
    is filled in (自动填充) and locked — shown masked (张*三), and `cleaned_data` gets the verified name itself
    whatever was posted. Call `autofill_real_name(user_id=…)` after building the form, bound or not.

    The clear name never reaches the page; the server puts it in. Until verification the field is an ordinary one.
    """

    real_name_field = "real_name"
    fields: dict[str, forms.Field]
    cleaned_data: dict[str, Any]
    verified_real_name: str | None = None

    def autofill_real_name(self, *, user_id: int | None) -> bool:
        name = verified_name_of(user_id=user_id) if user_id is not None else None
        if name is None:
            return False
        self.verified_real_name = name
        field = self.fields[self.real_name_field]
        field.disabled = True  # Django ignores a posted value for a disabled field and keeps the initial one
        field.initial = mask_name(name)
        field.widget.attrs["data-autofilled"] = "real-name"
        return True

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        if self.verified_real_name is not None:
            cleaned[self.real_name_field] = self.verified_real_name
        return cleaned
