"""Writes on sub-sites (分站): a reseller's own storefront (name, slug, logo, notice, markups) and its custom
domain (claimed, then verified by a DNS TXT record or a file), plus what staff may do to one (disable it, take a
domain's verification back).

A reseller has at most one sub-site; only an active reseller opens or edits one. A markup over the tier's cap is
refused here when it is saved (the price rule also clamps it, in case the cap is lowered later). Every write tells
the process caches (kameng.resellers.subsite_cache) after commit, so routing and prices follow within a second.
Domain probes go out to the internet and so run outside any transaction: look first, then record.
"""

from __future__ import annotations

import re
import secrets
import uuid
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from kameng.catalog.models import ProductStatus, Sku
from kameng.catalog.pictures import picture_prepare
from kameng.catalog.selectors import skus_for_sale
from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.core.money import money
from kameng.resellers import domain_probe
from kameng.resellers.models import MarkupKind, Reseller, SubSite, SubSitePrice
from kameng.resellers.pricing_subsite import HUNDRED, owner_cost
from kameng.resellers.subsite_cache import subsites_changed

SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,28})[a-z0-9]")
# Names a sub-site may not take: they are (or may become) the platform's own hosts and paths.
RESERVED_SLUGS = frozenset({
    "www", "admin", "api", "static", "media", "openapi", "s", "sim", "pay", "reseller", "supplier", "login",
    "logout", "register", "account", "wallet", "orders", "search", "help", "support", "kameng", "mail", "smtp",
    "imap", "pop", "ftp", "cdn", "ns1", "ns2", "dev", "test", "staging", "official", "root", "system",
})
DOMAIN_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")
TITLE_MAX = 60
NOTICE_MAX = 500
MARKUP_MAX = Decimal("100000")
MAX_LOGO_BYTES = 1024 * 1024


class SubSiteError(ApplicationError):
    """A sub-site setting that cannot be saved; the message says what to change."""


def _reseller_active(reseller_id: int) -> Reseller:
    reseller = Reseller.objects.select_related("tier").filter(pk=reseller_id).first()
    if reseller is None:
        raise NotFoundError("代理商不存在", code="reseller_not_found")
    if not reseller.is_active:
        raise SubSiteError("代理资格审核通过后才能开设分站", code="reseller_not_active", status_code=403)
    return reseller


def _own_subsite(reseller_id: int) -> SubSite:
    subsite = SubSite.objects.filter(reseller_id=reseller_id).first()
    if subsite is None:
        raise NotFoundError("您还没有开设分站，请先保存分站设置", code="subsite_not_found")
    return subsite


def slug_clean(slug: str) -> str:
    slug = slug.strip().lower()
    if not SLUG_RE.fullmatch(slug) or "--" in slug:
        raise SubSiteError("站点标识须为 3–30 位小写字母、数字或连字符（不能以连字符开头或结尾）", code="slug_invalid")
    if slug in RESERVED_SLUGS:
        raise SubSiteError("站点标识“%(slug)s”是保留名称，请换一个", code="slug_reserved", params={"slug": slug})
    return slug


def markup_clean(*, kind: str, value: Decimal | str) -> tuple[str, Decimal]:
    if kind not in MarkupKind.values:
        raise SubSiteError("加价方式须为百分比或固定金额", code="markup_kind_invalid")
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as error:
        raise SubSiteError("加价须为数字", code="markup_invalid") from error
    if not amount.is_finite() or amount < 0 or amount > MARKUP_MAX:
        raise SubSiteError("加价须在 0 到 %(max)s 之间", code="markup_invalid", params={"max": MARKUP_MAX})
    return kind, money(amount)


def _cap_percent(reseller: Reseller) -> Decimal:
    return reseller.tier.subsite_markup_cap_percent if reseller.tier is not None else Decimal("0")


def _percent(value: Decimal) -> str:
    return format(value.normalize(), "f")  # 30.00 → "30", 12.50 → "12.5"


def _check_cap(*, reseller: Reseller, kind: str, value: Decimal, sku_ids: list[int]) -> None:
    """Refuse a markup above the tier's cap: a percent against the cap itself, a fixed amount against the cap on
    the owner's cost of each SKU it applies to."""
    cap = _cap_percent(reseller)
    if value == 0:
        return
    if cap <= 0:
        raise SubSiteError("您的代理等级不允许分站加价，请联系平台", code="markup_not_allowed")
    if kind == MarkupKind.PERCENT:
        if value > cap:
            raise SubSiteError("加价不能超过您的代理等级上限 %(cap)s%%", code="markup_over_cap",
                               params={"cap": _percent(cap)})
        return
    for sku_id, sku in skus_for_sale(sku_ids=sku_ids).items():
        cost = owner_cost(sku=sku, owner_user_id=reseller.user_id)
        most = money(cost * cap / HUNDRED)
        if value > most:
            raise SubSiteError("“%(sku)s”的固定加价最多 ¥%(most)s（成本价 ¥%(cost)s 的 %(cap)s%%）",
                               code="markup_over_cap", extra={"sku_id": sku_id},
                               params={"sku": sku.title, "most": most, "cost": cost, "cap": _percent(cap)})


def _skus_on_default(subsite: SubSite | None) -> list[int]:
    """The SKUs on sale that the default markup prices (those without a markup of their own)."""
    own = set(SubSitePrice.objects.filter(subsite=subsite).values_list("sku_id", flat=True)) if subsite else set()
    return [pk for pk in Sku.objects.filter(is_active=True, product__status=ProductStatus.ON_SALE)
            .values_list("pk", flat=True) if pk not in own]


def logo_store(data: bytes) -> str:
    """Check an uploaded logo (a real JPEG, PNG or WebP within the size limits) and store it re-encoded as WebP;
    the storage name. Raises PictureRejectedError."""
    if len(data) > MAX_LOGO_BYTES:
        raise SubSiteError("标志图片不能超过 1 MB，请压缩后再上传", code="logo_too_large")
    prepared = picture_prepare(data=data)
    return default_storage.save(f"subsites/{uuid.uuid4().hex}.webp", ContentFile(prepared.thumbnail))


def subsite_save(*, reseller_id: int, slug: str, title: str, notice: str = "", markup_kind: str = MarkupKind.PERCENT,
                 markup_value: Decimal | str = "0", is_enabled: bool = True, logo: bytes | None = None,
                 logo_remove: bool = False) -> SubSite:
    """Open the reseller's sub-site or change its settings."""
    reseller = _reseller_active(reseller_id)
    slug = slug_clean(slug)
    title = title.strip()
    if not title or len(title) > TITLE_MAX:
        raise SubSiteError("站点名称须为 1–%(max)s 个字", code="title_invalid", params={"max": TITLE_MAX})
    notice = notice.strip()
    if len(notice) > NOTICE_MAX:
        raise SubSiteError("公告最多 %(max)s 个字", code="notice_too_long", params={"max": NOTICE_MAX})
    kind, value = markup_clean(kind=markup_kind, value=markup_value)
    existing = SubSite.objects.filter(reseller=reseller).first()
    if kind == MarkupKind.FIXED and value:
        _check_cap(reseller=reseller, kind=kind, value=value, sku_ids=_skus_on_default(existing))
    else:
        _check_cap(reseller=reseller, kind=kind, value=value, sku_ids=[])
    if SubSite.objects.filter(slug=slug).exclude(reseller=reseller).exists():
        raise ConflictError("站点标识“%(slug)s”已被使用，请换一个", code="slug_taken", params={"slug": slug})
    new_logo = logo_store(logo) if logo else None
    old_logo = ""
    try:
        with transaction.atomic():
            subsite = existing or SubSite(reseller=reseller)
            old_logo = (subsite.logo.name or "") if subsite.logo and (new_logo or logo_remove) else ""
            subsite.slug, subsite.title, subsite.notice = slug, title, notice
            subsite.markup_kind, subsite.markup_value, subsite.is_enabled = kind, value, is_enabled
            if new_logo:
                subsite.logo.name = new_logo
            elif logo_remove:
                subsite.logo.name = ""
            subsite.save()
            subsites_changed()
    except IntegrityError as error:
        if new_logo:
            default_storage.delete(new_logo)
        raise ConflictError("站点标识“%(slug)s”已被使用，请换一个", code="slug_taken", params={"slug": slug}) from error
    if old_logo:
        default_storage.delete(old_logo)
    return subsite


def subsite_markup_set(*, reseller_id: int, sku_id: int, markup_kind: str, markup_value: Decimal | str) -> SubSitePrice:
    """Give one SKU its own markup on the reseller's sub-site (replacing the one it had)."""
    reseller = _reseller_active(reseller_id)
    subsite = _own_subsite(reseller.pk)
    if sku_id not in skus_for_sale(sku_ids=[sku_id]):
        raise NotFoundError("商品规格不存在或已下架", code="sku_not_found")
    kind, value = markup_clean(kind=markup_kind, value=markup_value)
    _check_cap(reseller=reseller, kind=kind, value=value, sku_ids=[sku_id])
    with transaction.atomic():
        row, _ = SubSitePrice.objects.update_or_create(subsite=subsite, sku_id=sku_id,
                                                       defaults={"markup_kind": kind, "markup_value": value})
        subsites_changed()
    return row


def subsite_markup_remove(*, reseller_id: int, sku_id: int) -> None:
    """The SKU goes back to the sub-site's default markup."""
    subsite = _own_subsite(reseller_id)
    with transaction.atomic():
        SubSitePrice.objects.filter(subsite=subsite, sku_id=sku_id).delete()
        subsites_changed()


def domain_clean(domain: str) -> str:
    domain = domain.strip().lower().removeprefix("http://").removeprefix("https://").split("/")[0].rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise SubSiteError("域名格式不正确，例如 shop.example.com", code="domain_invalid") from error
    if len(domain) > 253 or not DOMAIN_RE.fullmatch(domain):
        raise SubSiteError("域名格式不正确，例如 shop.example.com", code="domain_invalid")
    site = settings.KAMENG_SITE_DOMAIN
    if (site and (domain == site or domain.endswith("." + site))) or domain in {
            host.lstrip(".") for host in settings.ALLOWED_HOSTS}:
        raise SubSiteError("不能绑定本站自己的域名", code="domain_platform")
    return domain


def domain_claim(*, reseller_id: int, domain: str) -> SubSite:
    """Bind a domain to the reseller's sub-site, not yet verified: a fresh verification token to publish."""
    _reseller_active(reseller_id)
    subsite = _own_subsite(reseller_id)
    domain = domain_clean(domain)
    if SubSite.objects.filter(custom_domain=domain).exclude(pk=subsite.pk).exists():
        raise ConflictError("该域名已被其他分站绑定", code="domain_taken")
    if subsite.custom_domain == domain and subsite.domain_token:
        return subsite  # the same domain again keeps its token (the record may be published already)
    try:
        with transaction.atomic():
            subsite.custom_domain, subsite.domain_token = domain, secrets.token_urlsafe(24)
            subsite.domain_verified_at = None
            subsite.save(update_fields=["custom_domain", "domain_token", "domain_verified_at", "updated_at"])
            subsites_changed()
    except IntegrityError as error:
        raise ConflictError("该域名已被其他分站绑定", code="domain_taken") from error
    return subsite


def domain_remove(*, reseller_id: int) -> SubSite:
    subsite = _own_subsite(reseller_id)
    with transaction.atomic():
        subsite.custom_domain, subsite.domain_token, subsite.domain_verified_at = None, "", None
        subsite.save(update_fields=["custom_domain", "domain_token", "domain_verified_at", "updated_at"])
        subsites_changed()
    return subsite


def domain_verify(*, reseller_id: int) -> SubSite:
    """Look for the token in the DNS TXT record, then in the file; record the domain as verified if either has it.
    Raises SubSiteError saying what was found (or not) otherwise."""
    _reseller_active(reseller_id)
    subsite = _own_subsite(reseller_id)
    if not subsite.custom_domain or not subsite.domain_token:
        raise SubSiteError("请先填写要绑定的域名", code="domain_missing")
    domain, token = subsite.custom_domain, subsite.domain_token
    problems: list[str] = []
    found = False
    for probe in (domain_probe.token_in_dns, domain_probe.token_in_file):  # outside any transaction
        try:
            found = probe(domain=domain, token=token)
        except domain_probe.ProbeError as error:
            problems.append(str(error))
        if found:
            break
    if not found:
        detail = "；".join(problems) or "TXT 记录和验证文件中都没有找到验证码"
        raise SubSiteError("域名验证未通过：%(detail)s。请按说明添加记录后再试（DNS 生效可能需要几分钟）",
                           code="domain_not_verified", params={"detail": detail})
    with transaction.atomic():
        updated = SubSite.objects.filter(pk=subsite.pk, custom_domain=domain, domain_token=token).update(
            domain_verified_at=timezone.now(), updated_at=timezone.now())
        subsites_changed()
    if not updated:
        raise ConflictError("域名在验证期间被修改，请重新验证", code="domain_changed")
    subsite.refresh_from_db()
    return subsite


# --- staff ---------------------------------------------------------------------------------------------------

def subsite_enabled_set(*, subsite_ids: list[int], is_enabled: bool) -> int:
    with transaction.atomic():
        count = SubSite.objects.filter(pk__in=subsite_ids).update(is_enabled=is_enabled, updated_at=timezone.now())
        subsites_changed()
    return count


def domain_unverify(*, subsite_ids: list[int]) -> int:
    """Stop serving the sub-sites' custom domains until their reseller verifies them again (a fresh token)."""
    count = 0
    with transaction.atomic():
        for subsite in SubSite.objects.filter(pk__in=subsite_ids, domain_verified_at__isnull=False):
            subsite.domain_verified_at, subsite.domain_token = None, secrets.token_urlsafe(24)
            subsite.save(update_fields=["domain_verified_at", "domain_token", "updated_at"])
            count += 1
        subsites_changed()
    return count
