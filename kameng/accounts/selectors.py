"""Reads about users: lookups by login, and real-name status (masked), age and the name forms autofill."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.utils import timezone

from kameng.accounts.identity import mask_id_number, mask_name, parse_id_number
from kameng.accounts.models import (
    PHONE_CONTEXT,
    REAL_NAME_ID_NUMBER_CONTEXT,
    RealName,
    RealNameStatus,
    User,
)
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


# --- real name (实名) ---------------------------------------------------------------------------------------------

def identity_index_of(id_number: str) -> bytes:
    """The blind index of a normalised 18-character ID number: one person, whichever account."""
    return blind_index(id_number, context=REAL_NAME_ID_NUMBER_CONTEXT)


@dataclass(frozen=True)
class RealNameView:
    """What may be shown of an account's real name: the status and, once verified, masked values only."""

    status: RealNameStatus
    is_verified: bool
    masked_name: str | None
    masked_id_number: str | None
    verified_at: datetime | None
    rejection_code: str
    attempts_left_today: int

    @property
    def status_display(self) -> str:
        return str(self.status.label)


def _attempts_left(real_name: RealName | None, today: date) -> int:
    limit: int = settings.KAMENG_REALNAME_ATTEMPTS_PER_DAY
    if real_name is None or real_name.attempts_day != today:
        return limit
    return max(0, limit - real_name.attempts)


def realname_of(*, user_id: int) -> RealNameView:
    real_name = RealName.objects.filter(user_id=user_id).first()
    today = timezone.localdate()
    if real_name is None:
        return RealNameView(status=RealNameStatus.UNVERIFIED, is_verified=False, masked_name=None,
                            masked_id_number=None, verified_at=None, rejection_code="",
                            attempts_left_today=_attempts_left(None, today))
    is_verified = real_name.status == RealNameStatus.VERIFIED
    return RealNameView(
        status=RealNameStatus(real_name.status), is_verified=is_verified,
        masked_name=mask_name(str(real_name.name)) if is_verified and real_name.name else None,
        masked_id_number=mask_id_number(str(real_name.id_number)) if is_verified and real_name.id_number else None,
        verified_at=real_name.verified_at, rejection_code=real_name.rejection_code,
        attempts_left_today=_attempts_left(real_name, today))


def is_verified(*, user_id: int) -> bool:
    return RealName.objects.filter(user_id=user_id, status=RealNameStatus.VERIFIED).exists()


def _verified(user_id: int) -> RealName | None:
    return RealName.objects.filter(user_id=user_id, status=RealNameStatus.VERIFIED).first()


def buyer_age(*, user_id: int, on: date | None = None) -> int | None:
    """Full years (周岁) on `on` (today by default) from the verified ID number; None if not verified.

    For the risk rules (minors' limits). The birth date is read from the encrypted number, not stored apart.
    """
    real_name = _verified(user_id)
    if real_name is None or not real_name.id_number:
        return None
    day = on or timezone.localdate()
    # The number was checked when verified; parse it against the latest possible day so a birth date that was
    # valid then is never refused now.
    return parse_id_number(str(real_name.id_number), today=date.max).age_on(day)


def verified_name_of(*, user_id: int) -> str | None:
    """The verified real name in clear, for forms that need it (kameng.accounts.forms.RealNameAutofillMixin) —
    to use server-side, never to show or log."""
    real_name = _verified(user_id)
    return str(real_name.name) if real_name is not None and real_name.name else None


def user_fingerprints(*, user_id: int) -> tuple[str | None, str | None]:
    """The user's phone and verified ID number as their blind indexes in hex (None where there is none), in one
    query: what risk control's phone and ID rules compare, without decrypting anything."""
    row = (User.objects.filter(pk=user_id)
           .values_list("phone_index", "real_name__id_number_index", "real_name__status").first())
    if row is None:
        return None, None
    phone_index, id_index, status = row
    return (bytes(phone_index).hex() if phone_index else None,
            bytes(id_index).hex() if id_index and status == RealNameStatus.VERIFIED else None)
