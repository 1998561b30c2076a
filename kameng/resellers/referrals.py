"""Invitation attribution (邀请关系): each user's invite code, who invited whom, and the chain a commission climbs.

Invite codes are 8 characters drawn at random from an alphabet without look-alikes (no 0/O, 1/I/L), made the first
time a user's code is asked for and never changed: a link shared once keeps working.

A user gets an inviter once, when the account is created (kameng.web.affiliate calls `referral_on_registration`):
- an `?aff=<code>` link followed within KAMENG_AFF_COOKIE_DAYS (a signed cookie) → that code's owner, source link;
- otherwise, registering on a reseller's sub-site (分站) → the sub-site's owner, source registration.
The link wins over the sub-site: it names a person who sent this visitor, the sub-site only where they arrived.
Staff may set or change anyone's inviter in the admin (source staff). Never the user itself, never a cycle (the
new inviter's own chain may not lead back to the user), checked here; the database refuses self-invitation too.
"""

from __future__ import annotations

import logging
import re
import secrets

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from kameng.core.errors import ApplicationError
from kameng.resellers.models import InviteCode, Referral, ReferralSource, SubSite

logger = logging.getLogger(__name__)

INVITE_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
INVITE_CODE_LENGTH = 8
INVITE_CODE_RE = re.compile(rf"^[{INVITE_CODE_ALPHABET}]{{{INVITE_CODE_LENGTH}}}$")
# How far up a chain is walked when looking for a cycle: well past any depth a commission reaches.
CHAIN_WALK_LIMIT = 100


def invite_code_normalise(text: str) -> str | None:
    """The code as stored (upper case), or None when `text` cannot be an invite code."""
    code = (text or "").strip().upper()
    return code if INVITE_CODE_RE.match(code) else None


def invite_code_of(*, user_id: int) -> str:
    """The user's invite code, made on first use."""
    code = InviteCode.objects.filter(user_id=user_id).values_list("code", flat=True).first()
    if code is not None:
        return code
    for _attempt in range(5):
        candidate = "".join(secrets.choice(INVITE_CODE_ALPHABET) for _ in range(INVITE_CODE_LENGTH))
        try:
            with transaction.atomic():
                return InviteCode.objects.create(user_id=user_id, code=candidate).code
        except IntegrityError:  # the user's code made by a concurrent request, or (rarely) a code taken
            code = InviteCode.objects.filter(user_id=user_id).values_list("code", flat=True).first()
            if code is not None:
                return code
    raise ApplicationError("暂时无法生成邀请码，请稍后再试", code="invite_code_unavailable", status_code=503)


def inviter_of_code(code: str) -> int | None:
    """The user id an invite code belongs to, or None."""
    normalised = invite_code_normalise(code)
    if normalised is None:
        return None
    return InviteCode.objects.filter(code=normalised).values_list("user_id", flat=True).first()


def inviter_chain(*, user_id: int, depth: int) -> list[int]:
    """The user's inviters, nearest first, at most `depth` of them (one query per level)."""
    chain: list[int] = []
    current = user_id
    while len(chain) < depth:
        inviter = Referral.objects.filter(user_id=current).values_list("inviter_id", flat=True).first()
        if inviter is None or inviter in chain or inviter == user_id:  # a cycle cannot be made; never loop anyway
            break
        chain.append(inviter)
        current = inviter
    return chain


def referral_would_cycle(*, user_id: int, inviter_id: int) -> bool:
    """Whether making `inviter_id` the user's inviter would close a loop (or is the user itself)."""
    return inviter_id == user_id or user_id in inviter_chain(user_id=inviter_id, depth=CHAIN_WALK_LIMIT)


def referral_on_registration(*, user_id: int, invite_code: str | None, subsite_id: int | None) -> Referral | None:
    """Record who invited a user who just registered (module docstring for the rule); None when nobody did.
    Never raises for a bad code: attribution must not stand in the way of an account."""
    if Referral.objects.filter(user_id=user_id).exists():
        return None
    inviter_id: int | None = None
    source = ReferralSource.LINK
    if invite_code:
        inviter_id = inviter_of_code(invite_code)
    if inviter_id is None and subsite_id is not None:
        inviter_id = (SubSite.objects.filter(pk=subsite_id).values_list("reseller__user_id", flat=True).first())
        source = ReferralSource.REGISTRATION
    if inviter_id is None or referral_would_cycle(user_id=user_id, inviter_id=inviter_id):
        return None
    try:
        with transaction.atomic():
            return Referral.objects.create(user_id=user_id, inviter_id=inviter_id, source=source)
    except IntegrityError:  # recorded a moment ago by another request
        logger.info("user %s already has an inviter", user_id)
        return None


def referral_set_by_staff(*, user_id: int, inviter_id: int | None) -> Referral | None:
    """Staff set (or, with None, remove) the user's inviter. Refuses the user itself and a cycle."""
    if inviter_id is None:
        Referral.objects.filter(user_id=user_id).delete()
        return None
    if not get_user_model().objects.filter(pk=inviter_id).exists():
        raise ApplicationError("邀请人不存在", code="inviter_not_found", status_code=404)
    if inviter_id == user_id:
        raise ApplicationError("不能把用户设为自己的邀请人", code="referral_self")
    if referral_would_cycle(user_id=user_id, inviter_id=inviter_id):
        raise ApplicationError("该邀请人在此用户的下级链上，设置后会形成循环", code="referral_cycle")
    referral, _ = Referral.objects.update_or_create(
        user_id=user_id, defaults={"inviter_id": inviter_id, "source": ReferralSource.STAFF})
    return referral
