"""Log in with a username or a phone number and a password."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from kameng.accounts.models import User
from kameng.accounts.selectors import user_by_login


class UsernameOrPhoneBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> User | None:
        if not username or password is None:
            return None
        user = user_by_login(username)
        if user is None:
            User().set_password(password)  # same work as a real check: no timing hint that the login is unknown
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
