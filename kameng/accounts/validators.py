"""Password rules Django does not ship."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class NotBlankPasswordValidator:
    """A password of blanks only (eight spaces pass the length rule) is no password."""

    def validate(self, password: str, user: Any = None) -> None:
        if not password.strip():
            raise ValidationError(_("密码不能只有空格。"), code="password_blank")

    def get_help_text(self) -> str:
        return _("密码不能只有空格。")


class NoLoginInPasswordValidator:
    """The username or phone number inside the password (bob04 / bob04bob04): the first thing an attacker tries.

    Django's similarity check compares whole strings and lets a doubled username through.
    """

    def validate(self, password: str, user: Any = None) -> None:
        if user is None:
            return
        folded = password.casefold()
        for login in (getattr(user, "username", None), getattr(user, "phone", None)):
            if login and len(login) >= 3 and login.casefold() in folded:
                raise ValidationError(_("密码不能包含用户名或手机号。"), code="password_contains_login")

    def get_help_text(self) -> str:
        return _("密码不能包含用户名或手机号。")
