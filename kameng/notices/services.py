"""The buyer's notification e-mail address: set only through a link sent to it (so nobody can make the platform
mail an address that did not ask for it), with the confirmation e-mails bounded per account and per address.

The link carries its own state, signed with SECRET_KEY: the account, the new address, the address it replaces and
the language the buyer was reading. It is good for KAMENG_EMAIL_CONFIRM_HOURS and only while the account's address
is still the one it replaces, so a link used once (or overtaken by another change) does nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils.crypto import salted_hmac

from kameng.core.counters import counter_hit
from kameng.core.errors import ApplicationError, ConflictError
from kameng.notices.mail import email_build, known_language, site_link
from kameng.notices.models import NoticeLanguage

EMAIL_MAX_LENGTH = 254
CONFIRM_SALT = "kameng.notices.email-confirm"
LIMIT_WINDOW_SECONDS = 24 * 3600


class EmailChangeLimitedError(ApplicationError):
    status_code = 429


def email_normalize(email: str) -> str:
    """Trimmed and lower-case, or ApplicationError if it is not an e-mail address."""
    email = email.strip().lower()
    if not email or len(email) > EMAIL_MAX_LENGTH:
        raise ApplicationError("请输入有效的邮箱地址", code="invalid_email")
    try:
        validate_email(email)
    except ValidationError as error:
        raise ApplicationError("请输入有效的邮箱地址", code="invalid_email") from error
    return email


def _limit(*, key: str, code: str) -> None:
    if counter_hit(key=key, window=LIMIT_WINDOW_SECONDS) > settings.KAMENG_EMAIL_CONFIRMATIONS_PER_DAY:
        raise EmailChangeLimitedError("今天发送的确认邮件已达上限，请明天再试", code=code)


def notice_email_change_request(*, user_id: int, email: str, language: str) -> str:
    """Send a confirmation link to `email` for the account; returns the normalised address. The account's address
    does not change until the link is opened (notice_email_confirm)."""
    email = email_normalize(email)
    user = get_user_model().objects.get(pk=user_id)
    if email == user.email:
        raise ConflictError("这已经是您的通知邮箱", code="email_unchanged")
    # Both bounds count every request, refused ones too: one account cannot mail many addresses, and many accounts
    # cannot mail one address, more than a few times a day.
    _limit(key=f"notices:email-confirm:user:{user_id}", code="email_confirm_limited")
    address_key = salted_hmac(CONFIRM_SALT, email).hexdigest()  # no address in clear in the cache
    _limit(key=f"notices:email-confirm:address:{address_key}", code="email_confirm_limited")
    token = signing.dumps({"user": user_id, "email": email, "was": user.email, "language": known_language(language)},
                          salt=CONFIRM_SALT, compress=True)
    message = email_build(to=email, template="confirm_address", language=language, context={
        "username": user.username, "hours": settings.KAMENG_EMAIL_CONFIRM_HOURS,
        "link": site_link(reverse("web:account_email_confirm", args=[token])),
    })
    message.send()
    return email


def _link_state(*, user_id: int, token: str) -> dict[str, str]:
    try:
        state = signing.loads(token, salt=CONFIRM_SALT, max_age=settings.KAMENG_EMAIL_CONFIRM_HOURS * 3600)
    except signing.BadSignature as error:  # SignatureExpired included
        raise ApplicationError("确认链接无效或已过期，请重新设置邮箱", code="email_link_invalid") from error
    if not isinstance(state, dict) or state.get("user") != user_id:
        raise ApplicationError("确认链接无效或已过期，请重新设置邮箱", code="email_link_invalid")
    return state


def notice_email_pending(*, user_id: int, token: str) -> str:
    """The address a confirmation link would set (for the page that asks the buyer to confirm it)."""
    return str(_link_state(user_id=user_id, token=token)["email"])


def notice_email_confirm(*, user_id: int, token: str) -> str:
    """Set the account's notification address from a confirmation link; returns it."""
    state = _link_state(user_id=user_id, token=token)
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model.objects.select_for_update().get(pk=user_id)
        if user.email == state["email"]:
            return user.email  # opened twice: already done
        if user.email != state["was"]:
            raise ApplicationError("确认链接无效或已过期，请重新设置邮箱", code="email_link_invalid")
        user.email = state["email"]
        user.save(update_fields=["email"])
        NoticeLanguage.objects.update_or_create(user_id=user_id,
                                                defaults={"language": known_language(state["language"])})
    return user.email


def notice_email_remove(*, user_id: int) -> None:
    """No more e-mail: the account's address is cleared."""
    get_user_model().objects.filter(pk=user_id).update(email="")
