"""Reads about users."""

from __future__ import annotations

from kameng.accounts.models import PHONE_CONTEXT, User
from kameng.core.crypto import blind_index


def phone_index_of(phone: str) -> bytes:
    return blind_index(phone.strip(), context=PHONE_CONTEXT)


def user_by_login(login: str) -> User | None:
    """A user by username (case-insensitive; an exact match first) or, for an 11-digit mainland number, by phone."""
    login = login.strip()
    if not login:
        return None
    if login.isdigit() and len(login) == 11:
        by_phone = User.objects.filter(phone_index=phone_index_of(login)).first()
        if by_phone is not None:
            return by_phone
    user = User.objects.filter(username=login).first()
    if user is None:
        # Two accounts differing only in case can exist only if staff created them; then none is guessed.
        matches = list(User.objects.filter(username__iexact=login)[:2])
        user = matches[0] if len(matches) == 1 else None
    return user
