"""Reads about users."""

from __future__ import annotations

from kameng.accounts.models import PHONE_CONTEXT, User
from kameng.core.crypto import blind_index


def phone_index_of(phone: str) -> bytes:
    return blind_index(phone.strip(), context=PHONE_CONTEXT)


def user_by_login(login: str) -> User | None:
    """A user by username or, for an 11-digit mainland number, by phone."""
    login = login.strip()
    user = User.objects.filter(username=login).first()
    if user is None and login.isdigit() and len(login) == 11:
        user = User.objects.filter(phone_index=phone_index_of(login)).first()
    return user
