"""The front door of sub-sites (分站): which sub-site a request is for, and which Host headers are accepted at all.

`SubSiteMiddleware` comes FIRST in MIDDLEWARE and sets `request.subsite` (a SubSiteInfo, or None on the main
site). A sub-site is recognised by, in order:
1. a custom domain its reseller bound and verified (`SubSite.custom_domain` with `domain_verified_at`);
2. a subdomain `<slug>.<KAMENG_SITE_DOMAIN>` (`www.` is the main site);
3. a path prefix `/s/<slug>/` on any accepted host: the prefix is taken off `path_info` (URLs resolve as on the
   main site) and made the script prefix for the request, so every reverse() and {% url %} on the page stays
   inside the sub-site; the previous prefix is restored afterwards.
An unknown slug, or a sub-site not served (disabled, its reseller no longer active), answers the 404 page.

Hosts. Django accepts a Host only if ALLOWED_HOSTS matches it (`request.get_host()`, DisallowedHost → 400).
Custom domains cannot be listed there ahead of time, and ALLOWED_HOSTS = ["*"] would accept anything (poisoned
password-reset links, cache poisoning). So this middleware, before anything else reads the host, accepts:
- what ALLOWED_HOSTS accepts (the site's own names; with KAMENG_SITE_DOMAIN, the domain and its subdomains);
- a verified custom domain of a sub-site (from the per-process routing table, kameng.resellers.subsite_cache,
  reloaded within a second of a change: an un-verified domain stops being served at once);
and answers 400 Bad Request (Django's own DisallowedHost) to any other Host. For a custom domain it accepted, it
pins the request's `get_host()` to that host, so CSRF's origin check, redirects and absolute URLs see it as Django
would have; nothing else widens ALLOWED_HOSTS.

Sessions and CSRF: the buyer's account is platform-wide. On a path prefix the session and CSRF cookies (path "/",
host-only) are the main site's: logging in on /s/<slug>/ logs in everywhere on that host. A subdomain or a custom
domain is another host, so it has its own cookies and the buyer logs in there (the same account).
Platform-only pages (the staff admin, the supplier and reseller consoles) answer 404 on a sub-site.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.http.request import split_domain_port, validate_host
from django.urls import get_script_prefix

from kameng.catalog.pricing import SALES_CHANNEL_STOREFRONT, subsite_channel
from kameng.core.urls import script_prefix_within
from kameng.resellers.subsite_cache import SubSiteInfo, subsite_id_by_domain, subsite_id_by_slug, subsite_info

# The URL map of a request for a sub-site that is not there (or a platform page asked on one): every path is the
# 404 page, rendered by the rest of the middleware like any page (language, CSP, the visitor's session).
MISSING_URLCONF = "kameng.web.subsite_missing_urls"
PREFIX_RE = re.compile(r"^/s/([a-z0-9-]{1,40})(/.*)?$")
MAIN_SITE_LABELS = frozenset({"www"})
# Paths of the platform itself, never shown on a sub-site (their links would leave it, or they are staff's).
PLATFORM_ONLY_PREFIXES = ("/admin/", "/supplier/", "/reseller/", "/sim/")


def request_subsite(request: HttpRequest) -> SubSiteInfo | None:
    return getattr(request, "subsite", None)


def sales_channel_of(request: HttpRequest) -> str:
    """The sales channel of a storefront request: the sub-site's, else the main storefront's."""
    subsite = request_subsite(request)
    return subsite_channel(subsite.id) if subsite is not None else SALES_CHANNEL_STOREFRONT


def _allowed_hosts() -> list[str]:
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:  # what Django accepts then
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return allowed


def _pin_host(request: HttpRequest, host: str) -> None:
    """Make `request.get_host()` answer `host`, which this middleware validated (ALLOWED_HOSTS cannot list it)."""
    request.get_host = lambda: host  # type: ignore[method-assign]


def _slug_of_subdomain(domain: str) -> str | None:
    site = settings.KAMENG_SITE_DOMAIN
    if not site or not domain.endswith("." + site):
        return None
    label = domain[: -len(site) - 1]
    return label if label not in MAIN_SITE_LABELS else None


class SubSiteMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.subsite = None  # type: ignore[attr-defined]
        raw_host = request._get_raw_host()  # type: ignore[attr-defined]
        domain, _port = split_domain_port(raw_host)
        subsite_id: int | None = None
        if domain and validate_host(domain, _allowed_hosts()):
            label = _slug_of_subdomain(domain)
            if label is not None:
                subsite_id = subsite_id_by_slug(label) if "." not in label else None
                if subsite_id is None:
                    return self._missing(request)
        elif domain:
            subsite_id = subsite_id_by_domain(domain)
            if subsite_id is None:
                raise DisallowedHost(f"Invalid HTTP_HOST header: {raw_host!r}. It is neither in ALLOWED_HOSTS "
                                     "nor a verified custom domain of a sub-site.")
            _pin_host(request, raw_host)
        else:
            raise DisallowedHost(f"Invalid HTTP_HOST header: {raw_host!r}.")
        if subsite_id is not None:
            return self._serve(request, subsite_id, prefix=None)
        match = PREFIX_RE.match(request.path_info)
        if match is None:
            return self.get_response(request)
        subsite_id = subsite_id_by_slug(match.group(1))
        if subsite_id is None:
            return self._missing(request)
        return self._serve(request, subsite_id, prefix=match)

    def _serve(self, request: HttpRequest, subsite_id: int, *, prefix: re.Match[str] | None) -> HttpResponse:
        info = subsite_info(subsite_id)
        if info is None or not info.is_served:
            return self._missing(request)
        request.subsite = info  # type: ignore[attr-defined]
        if prefix is None:
            return self._inside(request)
        rest = prefix.group(2)
        if rest is None:  # /s/demo → /s/demo/
            return HttpResponsePermanentRedirect(request.path + "/")
        request.path_info = rest
        with script_prefix_within(f"{get_script_prefix().rstrip('/')}/s/{info.slug}/"):
            return self._inside(request)

    def _inside(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(PLATFORM_ONLY_PREFIXES):
            request.urlconf = MISSING_URLCONF
        return self.get_response(request)

    def _missing(self, request: HttpRequest) -> HttpResponse:
        request.urlconf = MISSING_URLCONF
        return self.get_response(request)
