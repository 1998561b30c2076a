"""Attribution from the request: the invitation cookie a `?aff=<invite code>` link left (written by
kameng.web.affiliate.AffiliateMiddleware) and the sub-site (分站) the visitor is on (`request.subsite`, set by the
sub-site routing), turned into the new account's inviter when it registers (kameng.resellers.referrals says who
wins). Every front door that creates an account calls `referral_after_registration`: the storefront's password
registration and SMS / one-tap logins that register a number, and their JSON twins.

The cookie lives KAMENG_AFF_COOKIE_DAYS and is signed, so only this site's links write it: a value typed by hand
or set by another page on a shared parent domain is ignored.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest

from kameng.resellers.referrals import invite_code_normalise, referral_on_registration

logger = logging.getLogger(__name__)

AFF_PARAMETER = "aff"
AFF_COOKIE = "kameng_aff"
AFF_COOKIE_SALT = "kameng.resellers.attribution"


def aff_cookie_max_age() -> int:
    return int(settings.KAMENG_AFF_COOKIE_DAYS) * 24 * 3600


def has_aff_parameter(request: HttpRequest) -> bool:
    """Cheap: looks at the raw query string, so a request without a link parses nothing."""
    return f"{AFF_PARAMETER}=" in request.META.get("QUERY_STRING", "")


def invite_code_from_request(request: HttpRequest) -> str | None:
    """The invite code this visitor followed: this very request's link, else the cookie (within its life)."""
    if has_aff_parameter(request):
        from_link = invite_code_normalise(request.GET.get(AFF_PARAMETER, ""))
        if from_link is not None:
            return from_link
    code = request.get_signed_cookie(AFF_COOKIE, default=None, salt=AFF_COOKIE_SALT, max_age=aff_cookie_max_age())
    return invite_code_normalise(code or "")


def referral_after_registration(request: HttpRequest, *, user_id: int) -> None:
    """Record the just-registered user's inviter from the invitation cookie or the sub-site it registered on.
    Never fails the registration."""
    subsite = getattr(request, "subsite", None)
    try:
        referral_on_registration(user_id=user_id, invite_code=invite_code_from_request(request),
                                 subsite_id=getattr(subsite, "pk", None))
    except Exception:  # attribution is a bonus: the account stands without it
        logger.exception("could not record the inviter of user %s", user_id)
