"""What the front door and the price rule read about sub-sites (分站), held per process.

Every storefront request on a sub-site (and every unknown Host header) asks which sub-site a slug or a domain
names, and every price on a sub-site asks for its markups: none of that may cost a query each time. So:
- the routing table (every sub-site's slug, every verified custom domain → the sub-site id) is loaded whole, in
  one query, and an unknown slug or host costs no query at all (a flood of made-up Host headers stays in memory);
- one sub-site's details (title, logo, notice, default markup, per-SKU markups, the owner's user id and markup
  cap, whether it is served) are loaded on first use, two queries;
- both are checked against a token in the shared cache at most once every `CHECK_SECONDS`
  (kameng.core.cache.VersionedProcessCache); every write that
  changes what is read here calls `subsites_changed()` after commit, which replaces the token, so every process
  reloads within about a second (the process that wrote reloads at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from kameng.core.cache import VersionedProcessCache
from kameng.resellers.models import ResellerStatus, SubSite, SubSitePrice

CHECK_SECONDS = 1.0
_TOKEN_KEY = "resellers:subsites"  # noqa: S105 - a cache key, not a secret
_DETAILS_MAX = 10_000  # forgotten all at once past this: a bound on memory, not an eviction policy


@dataclass(frozen=True)
class Markup:
    kind: str  # MarkupKind
    value: Decimal


@dataclass(frozen=True)
class SubSiteInfo:
    """One sub-site as the storefront and the price rule see it."""

    id: int
    slug: str
    title: str
    logo_url: str
    notice: str
    default_markup: Markup
    owner_user_id: int
    markup_cap_percent: Decimal  # the owner's tier cap; 0 without a tier (no markup)
    is_served: bool  # enabled by its reseller and the reseller active: otherwise its pages answer 404
    custom_domain: str  # the verified one, "" if none
    markups: dict[int, Markup] = field(default_factory=dict)  # sku id → its own markup

    def markup_of(self, sku_id: int) -> Markup:
        return self.markups.get(sku_id, self.default_markup)


@dataclass(frozen=True)
class RoutingTable:
    token: str
    by_slug: dict[str, int]
    by_domain: dict[str, int]  # verified custom domains only


def _load_routing(token: str) -> RoutingTable:
    by_slug: dict[str, int] = {}
    by_domain: dict[str, int] = {}
    for subsite_id, slug, domain, verified_at in SubSite.objects.values_list(
            "pk", "slug", "custom_domain", "domain_verified_at"):
        by_slug[slug] = subsite_id
        if domain and verified_at is not None:
            by_domain[domain] = subsite_id
    return RoutingTable(token=token, by_slug=by_slug, by_domain=by_domain)


# The routing table, checked against the shared token at most every CHECK_SECONDS; entries: sub-site id -> its
# details (None: no such sub-site), until the token moves.
_subsites = VersionedProcessCache[RoutingTable, int, SubSiteInfo | None](
    key=_TOKEN_KEY, load=_load_routing, check_seconds=CHECK_SECONDS, entries_max=_DETAILS_MAX)


def subsite_caches_clear() -> None:
    """Forget this process's copies (tests; a fresh start)."""
    _subsites.forget()


def subsites_changed() -> None:
    """A sub-site, its markups or its domain changed: every process reloads (after the current commit)."""
    transaction.on_commit(_subsites.changed)


def routing_table() -> RoutingTable:
    return _subsites.value()


def subsite_id_by_slug(slug: str) -> int | None:
    return routing_table().by_slug.get(slug)


def subsite_id_by_domain(domain: str) -> int | None:
    """The sub-site whose VERIFIED custom domain this is (lowercase, no port), else None."""
    return routing_table().by_domain.get(domain)


def _load_details(subsite_id: int) -> SubSiteInfo | None:
    subsite = SubSite.objects.select_related("reseller__tier").filter(pk=subsite_id).first()
    if subsite is None:
        return None
    reseller = subsite.reseller
    tier = reseller.tier
    markups = {sku_id: Markup(kind=kind, value=value) for sku_id, kind, value in
               SubSitePrice.objects.filter(subsite_id=subsite_id).values_list("sku_id", "markup_kind",
                                                                              "markup_value")}
    return SubSiteInfo(
        id=subsite.pk, slug=subsite.slug, title=subsite.title, logo_url=subsite.logo.url if subsite.logo else "",
        notice=subsite.notice, default_markup=Markup(kind=subsite.markup_kind, value=subsite.markup_value),
        owner_user_id=reseller.user_id,
        markup_cap_percent=tier.subsite_markup_cap_percent if tier is not None else Decimal("0"),
        is_served=subsite.is_enabled and reseller.status == ResellerStatus.ACTIVE,
        custom_domain=(subsite.custom_domain or "") if subsite.domain_verified_at is not None else "",
        markups=markups)


def subsite_info(subsite_id: int) -> SubSiteInfo | None:
    """The sub-site's details (None if there is no such sub-site), as fresh as the token said within a second."""
    return _subsites.entry(subsite_id, _load_details)
