"""The reseller console's sub-site page (分站设置, /reseller/subsite/): open or edit the sub-site (slug, name, logo,
notice, default markup), per-SKU markups with the price they make, the sub-site's addresses, and binding a custom
domain (claim → publish the token in DNS or a file → 验证).

Every view works on the requesting reseller's own sub-site only (found by `request.reseller`); no URL names
another's. Refusals come from kameng.resellers.subsites and are shown on the page.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from kameng.catalog.pictures import PictureRejectedError
from kameng.catalog.pricing import sku_price, subsite_channel
from kameng.catalog.selectors import products_on_sale, skus_for_sale
from kameng.core.errors import ApplicationError
from kameng.resellers import domain_probe
from kameng.resellers.models import MarkupKind, SubSite, SubSitePrice
from kameng.resellers.pricing_subsite import markup_amount, owner_cost
from kameng.resellers.subsite_cache import Markup
from kameng.resellers.subsites import (
    domain_claim,
    domain_remove,
    domain_verify,
    subsite_markup_remove,
    subsite_markup_set,
    subsite_save,
)
from kameng.web.errors import message_for, status_for
from kameng.web.views.reseller_console import (
    RESELLER_CONSOLE_NAV,
    ResellerRequest,
    console_render,
    reseller_required,
)

RESELLER_CONSOLE_NAV.append(("web:reseller_subsite", gettext_lazy("分站设置")))

SKUS_SHOWN_MAX = 200
TEMPLATE = "web/reseller/subsite.html"


# The markup kinds as the page's language says them (their labels are in CONSOLE_CHOICE_LABELS).
MARKUP_KIND_CHOICES = [(value, gettext_lazy(label)) for value, label in MarkupKind.choices]


class SubSiteForm(forms.Form):
    slug = forms.CharField(label=gettext_lazy("站点标识"), max_length=30,
                           help_text=gettext_lazy("3–30 位小写字母、数字或连字符，用于分站地址"))
    title = forms.CharField(label=gettext_lazy("站点名称"), max_length=60)
    notice = forms.CharField(label=gettext_lazy("公告"), required=False, max_length=500,
                             widget=forms.Textarea(attrs={"rows": 3}))
    markup_kind = forms.ChoiceField(label=gettext_lazy("默认加价方式"), choices=MARKUP_KIND_CHOICES)
    markup_value = forms.DecimalField(label=gettext_lazy("默认加价"), min_value=Decimal("0"), max_digits=12,
                                      decimal_places=2,
                                      help_text=gettext_lazy("百分比按您的成本价计算；固定金额单位为元"))
    is_enabled = forms.BooleanField(label=gettext_lazy("开放访问"), required=False, initial=True)
    logo = forms.FileField(label=gettext_lazy("标志图片"), required=False,
                           help_text=gettext_lazy("JPEG、PNG 或 WebP，不超过 1 MB，宽高至少 64 像素"))
    logo_remove = forms.BooleanField(label=gettext_lazy("删除标志图片"), required=False)


class MarkupForm(forms.Form):
    sku_id = forms.IntegerField(label=gettext_lazy("规格"), min_value=1)
    markup_kind = forms.ChoiceField(label=gettext_lazy("加价方式"), choices=MARKUP_KIND_CHOICES)
    markup_value = forms.DecimalField(label=gettext_lazy("加价"), min_value=Decimal("0"), max_digits=12,
                                      decimal_places=2)


class DomainForm(forms.Form):
    domain = forms.CharField(label=gettext_lazy("自定义域名"), max_length=253,
                             widget=forms.TextInput(attrs={"placeholder": "shop.example.com"}))


def _subsite_of(request: ResellerRequest) -> SubSite | None:
    return SubSite.objects.filter(reseller=request.reseller).first()


def _addresses(request: ResellerRequest, subsite: SubSite) -> list[str]:
    found = [f"{settings.SITE_URL}/s/{subsite.slug}/"]
    if settings.KAMENG_SITE_DOMAIN:
        found.append(f"{'https' if request.is_secure() else 'http'}://{subsite.slug}.{settings.KAMENG_SITE_DOMAIN}/")
    if subsite.custom_domain and subsite.domain_verified_at:
        found.append(f"{'https' if request.is_secure() else 'http'}://{subsite.custom_domain}/")
    return found


def _sku_rows(request: ResellerRequest, subsite: SubSite) -> list[dict[str, Any]]:
    """The SKUs on sale with the reseller's cost, the markup that applies and the sub-site's price."""
    own = {row.sku_id: row for row in SubSitePrice.objects.filter(subsite=subsite)}
    sku_ids = [sku.pk for product in products_on_sale() for sku in product.skus.all()][:SKUS_SHOWN_MAX]
    tier = request.reseller.tier
    cap = tier.subsite_markup_cap_percent if tier is not None else Decimal("0")
    rows = []
    for sku_id, sku in skus_for_sale(sku_ids=sku_ids).items():
        row = own.get(sku_id)
        markup = (Markup(kind=row.markup_kind, value=row.markup_value) if row is not None
                  else Markup(kind=subsite.markup_kind, value=subsite.markup_value))
        try:
            cost = owner_cost(sku=sku, owner_user_id=request.reseller.user_id)
            price = (sku_price(sku=sku, buyer_id=0, quantity=1, sales_channel=subsite_channel(subsite.pk)).unit_price
                     if subsite.is_enabled else cost + markup_amount(markup=markup, cost=cost, cap_percent=cap))
        except ApplicationError:
            continue
        rows.append({"sku_id": sku_id, "title": sku.title, "retail": sku.price, "cost": cost, "price": price,
                     "own": row, "markup": markup, "margin": price - cost})
    return sorted(rows, key=lambda row: row["title"])


def _page(request: ResellerRequest, *, form: SubSiteForm | None = None, markup_form: MarkupForm | None = None,
          domain_form: DomainForm | None = None, error: ApplicationError | None = None) -> HttpResponse:
    subsite = _subsite_of(request)
    if form is None:
        initial: dict[str, Any] = {"markup_kind": MarkupKind.PERCENT, "markup_value": Decimal("0"), "is_enabled": True}
        if subsite is not None:
            initial = {"slug": subsite.slug, "title": subsite.title, "notice": subsite.notice,
                       "markup_kind": subsite.markup_kind, "markup_value": subsite.markup_value,
                       "is_enabled": subsite.is_enabled}
        form = SubSiteForm(initial=initial)
    tier = request.reseller.tier
    context = {
        "subsite": subsite, "form": form, "markup_form": markup_form or MarkupForm(),
        "domain_form": domain_form or DomainForm(initial={"domain": subsite.custom_domain if subsite else ""}),
        "cap_percent": tier.subsite_markup_cap_percent if tier is not None else Decimal("0"),
        "addresses": _addresses(request, subsite) if subsite is not None else [],
        "rows": _sku_rows(request, subsite) if subsite is not None else [],
        "txt_name": f"{domain_probe.TXT_PREFIX}{subsite.custom_domain}" if subsite and subsite.custom_domain else "",
        "file_url": (f"http://{subsite.custom_domain}{domain_probe.FILE_PATH}"
                     if subsite and subsite.custom_domain else ""),
    }
    if error is not None:
        context.update({"error_message": message_for(error), "error_code": error.code})
    return console_render(request, TEMPLATE, context, status=status_for(error) if error is not None else 200)


@require_http_methods(["GET", "POST"])
@reseller_required(active=True)
def reseller_subsite(request: ResellerRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request)
    form = SubSiteForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, form=form, error=ApplicationError(_("请检查分站设置"), code="form_invalid"))
    data = form.cleaned_data
    upload = data.get("logo")
    try:
        subsite_save(reseller_id=request.reseller.pk, slug=data["slug"], title=data["title"], notice=data["notice"],
                     markup_kind=data["markup_kind"], markup_value=data["markup_value"],
                     is_enabled=data["is_enabled"], logo=upload.read() if upload else None,
                     logo_remove=data["logo_remove"])
    except PictureRejectedError as error:
        form.add_error("logo", message_for(error))  # said beside the field; above the page, only where to look
        return _page(request, form=form, error=ApplicationError(_("请检查分站设置"), code=error.code))
    except ApplicationError as error:
        return _page(request, form=form, error=error)
    messages.success(request, _("分站设置已保存"))
    return redirect("web:reseller_subsite")


@require_POST
@reseller_required(active=True)
def reseller_subsite_markup(request: ResellerRequest) -> HttpResponse:
    form = MarkupForm(request.POST)
    if not form.is_valid():
        return _page(request, markup_form=form, error=ApplicationError(_("请检查规格和加价"), code="form_invalid"))
    try:
        subsite_markup_set(reseller_id=request.reseller.pk, sku_id=form.cleaned_data["sku_id"],
                           markup_kind=form.cleaned_data["markup_kind"], markup_value=form.cleaned_data["markup_value"])
    except ApplicationError as error:
        return _page(request, markup_form=form, error=error)
    messages.success(request, _("规格加价已保存"))
    return redirect("web:reseller_subsite")


@require_POST
@reseller_required(active=True)
def reseller_subsite_markup_remove(request: ResellerRequest, sku_id: int) -> HttpResponse:
    try:
        subsite_markup_remove(reseller_id=request.reseller.pk, sku_id=sku_id)
    except ApplicationError as error:
        return _page(request, error=error)
    messages.success(request, _("该规格已恢复默认加价"))
    return redirect("web:reseller_subsite")


@require_POST
@reseller_required(active=True)
def reseller_subsite_domain(request: ResellerRequest) -> HttpResponse:
    try:
        if request.POST.get("action") == "remove":
            domain_remove(reseller_id=request.reseller.pk)
            messages.success(request, _("已解除自定义域名"))
            return redirect("web:reseller_subsite")
        form = DomainForm(request.POST)
        if not form.is_valid():
            return _page(request, domain_form=form, error=ApplicationError(_("请填写域名"), code="form_invalid"))
        domain_claim(reseller_id=request.reseller.pk, domain=form.cleaned_data["domain"])
    except ApplicationError as error:
        return _page(request, domain_form=DomainForm(request.POST), error=error)
    messages.success(request, _("请按下方说明添加验证记录，然后点击“验证”"))
    return redirect("web:reseller_subsite")


@require_POST
@reseller_required(active=True)
def reseller_subsite_domain_verify(request: ResellerRequest) -> HttpResponse:
    try:
        domain_verify(reseller_id=request.reseller.pk)
    except ApplicationError as error:
        return _page(request, error=error)
    messages.success(request, _("域名验证通过，现在可以通过该域名访问分站"))
    return redirect("web:reseller_subsite")
