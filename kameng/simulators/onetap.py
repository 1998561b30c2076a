"""The demo's carrier for one-tap login (一键登录): a page at /sim/onetap/ that plays the mobile network.

A real carrier SDK recognises the SIM and hands the app a token for its number; here the tester picks the number
("本机号码 138****0000") and the page issues a short-lived, single-use token for it — opaque like a carrier's (the
number inside is encrypted) and signed with Django's signing under SECRET_KEY, so nobody without the server's key
can forge one — which the shop's simulator backend (kameng.accounts.onetap.SimulatedCarrierBackend) exchanges the way
Aliyun exchanges a real one. The browser goes back to the login page with it.
"""

from __future__ import annotations

import base64
import re
import secrets

from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from kameng.accounts.onetap import (
    SIMULATED_CARRIER_PHONE_CONTEXT,
    SIMULATED_CARRIER_SALT,
    SIMULATED_CARRIER_TOKEN_SECONDS,
)
from kameng.core.crypto import encrypt_text
from kameng.core.masking import mask_phone

DEFAULT_PHONE = "13800000000"
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")


def simulated_onetap_token(*, phone: str) -> str:
    """What the carrier's SDK would hand the app: a token for `phone`, good once, for a short while."""
    sealed = base64.urlsafe_b64encode(encrypt_text(phone, context=SIMULATED_CARRIER_PHONE_CONTEXT)).decode()
    return signing.dumps({"phone": sealed, "nonce": secrets.token_urlsafe(16)}, salt=SIMULATED_CARRIER_SALT)


def _return_url(request: HttpRequest) -> str:
    fallback = reverse("web:login") + "?tab=onetap"
    target = request.POST.get("return") or request.GET.get("return") or fallback
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = fallback
    return target


@require_http_methods(["GET", "POST"])
def onetap_carrier(request: HttpRequest) -> HttpResponse:
    """GET: the carrier's authorisation sheet for the chosen number. POST 一键登录: issue the token and go back."""
    return_url = _return_url(request)
    phone = (request.POST.get("phone") or request.GET.get("phone") or DEFAULT_PHONE).strip()
    valid = bool(PHONE_RE.match(phone))
    if request.method == "POST" and "login" in request.POST and valid:
        token = simulated_onetap_token(phone=phone)
        separator = "&" if "?" in return_url else "?"
        return HttpResponseRedirect(f"{return_url}{separator}onetap_token={token}")
    context = {"phone": phone, "masked_phone": mask_phone(phone) if valid else "", "valid": valid,
               "return_url": return_url, "token_seconds": SIMULATED_CARRIER_TOKEN_SECONDS}
    return render(request, "simulators/onetap.html", context, status=200 if valid else 400)
