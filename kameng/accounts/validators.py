"""Password rules: the ones Django does not ship, and Django's own said the way a Chinese site says them.

Django's stock texts read as translations ("密码只包含数字。", and in 5.2 the too-short one is not translated at all);
these subclasses keep Django's checks and give them kameng's words, translated by the storefront's catalog.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

PASSWORD_MIN_LENGTH = 8


class MinimumLengthValidator(password_validation.MinimumLengthValidator):
    def __init__(self, min_length: int = PASSWORD_MIN_LENGTH) -> None:
        super().__init__(min_length=min_length)

    def get_error_message(self) -> str:
        return _("密码至少需要 %(min_length)d 个字符。")  # Django's ValidationError fills in the params

    def get_help_text(self) -> str:
        return self.get_error_message() % {"min_length": self.min_length}


class UserAttributeSimilarityValidator(password_validation.UserAttributeSimilarityValidator):
    def get_error_message(self) -> str:
        # Django fills in the field's name ("密码跟 用户名 太相似了。"); one sentence covers every attribute checked.
        return _("密码与用户名、手机号等个人信息太相似。")

    def get_help_text(self) -> str:
        return _("密码不能与用户名、手机号等个人信息太相似。")


class CommonPasswordValidator(password_validation.CommonPasswordValidator):
    def get_error_message(self) -> str:
        return _("这个密码太常见，很容易被猜到，请换一个。")

    def get_help_text(self) -> str:
        return _("密码不能是常见密码。")


class NumericPasswordValidator(password_validation.NumericPasswordValidator):
    def get_error_message(self) -> str:
        return _("密码不能全是数字。")

    def get_help_text(self) -> str:
        return self.get_error_message()


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
