"""Staff pages of reseller tiers and resellers: tiers with their per-SKU prices (refused below the platform's cost,
kameng.resellers.tiers), and resellers with the review actions (approve at a tier, reject with a reason, suspend,
reactivate) and "appoint" (make a user a reseller directly at a tier). Every decision goes through
kameng.resellers.services, which records who decided and why."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget

from kameng.accounts.models import User
from kameng.catalog.models import Sku
from kameng.core.admin import ReadOnlyAdminMixin
from kameng.core.errors import ApplicationError
from kameng.resellers.models import Reseller, ResellerStatus, ResellerTier, TierPrice
from kameng.resellers.pricing import reseller_tables_changed
from kameng.resellers.services import (
    reseller_appoint,
    reseller_approve,
    reseller_reactivate,
    reseller_reject,
    reseller_suspend,
    reseller_tier_change,
)
from kameng.resellers.tiers import tier_discount_check, tier_price_check, tier_price_row_clean

REVIEW_PERMISSION = "resellers.change_reseller"
CONTACT_SHOWN = 30  # characters of the contact in the reseller list
ACTION_TEMPLATE = "admin/suppliers/action_form.html"  # the shared staff action form (a form beside notes)

if not admin.site.is_registered(Sku):
    # The tier price inline picks its SKU by autocomplete, which needs an admin of Sku with a search: a hidden,
    # read-only one (the catalogue edits SKUs inside their product).
    @admin.register(Sku)
    class SkuLookupAdmin(ReadOnlyAdminMixin, ModelAdmin):
        search_fields = ("name", "product__name")
        list_select_related = ("product",)

        def has_module_permission(self, request: HttpRequest) -> bool:
            return False


class TierPriceInlineForm(forms.ModelForm):
    class Meta:
        model = TierPrice
        fields = ("sku", "kind", "percent_off", "fixed_price")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        sku, kind = data.get("sku"), data.get("kind")
        if sku is None or kind is None or data.get("DELETE"):
            return data
        # the tier's discount as typed on this page (set by the tier admin), else as stored
        discount = getattr(self, "tier_discount", None)
        if discount is None and self.instance.tier_id:
            discount = self.instance.tier.discount_percent
        try:
            row = tier_price_row_clean(kind=kind, percent_off=data.get("percent_off"),
                                       fixed_price=data.get("fixed_price"))
            if discount is not None:
                tier_price_check(sku=sku, discount_percent=discount, row=row)
        except ApplicationError as error:
            raise ValidationError(error.message) from error
        data["percent_off"], data["fixed_price"] = row.percent_off, row.fixed_price
        return data


class TierPriceInline(TabularInline):
    model = TierPrice
    form = TierPriceInlineForm
    autocomplete_fields = ("sku",)
    extra = 0


class ResellerTierForm(forms.ModelForm):
    class Meta:
        model = ResellerTier
        fields = ("name", "rank", "discount_percent", "subsite_markup_cap_percent", "is_active")

    def clean_discount_percent(self) -> Any:
        discount = self.cleaned_data["discount_percent"]
        try:
            tier_discount_check(tier_id=self.instance.pk, discount_percent=discount)
        except ApplicationError as error:
            raise ValidationError(error.message) from error
        return discount


@admin.register(ResellerTier)
class ResellerTierAdmin(ModelAdmin):
    form = ResellerTierForm
    inlines = (TierPriceInline,)
    list_display = ("name", "rank", "discount_percent", "subsite_markup_cap_percent", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name",)

    def _create_formsets(self, request: HttpRequest, obj: Any, change: bool) -> Any:
        formsets, inline_instances = super()._create_formsets(request, obj, change)
        discount = obj.discount_percent if obj is not None else None
        for formset in formsets:
            formset.tier_discount = discount
            for form in formset.forms:
                form.tier_discount = discount
        return formsets, inline_instances

    def save_model(self, request: HttpRequest, obj: ResellerTier, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        transaction.on_commit(reseller_tables_changed)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        transaction.on_commit(reseller_tables_changed)

    def delete_model(self, request: HttpRequest, obj: ResellerTier) -> None:
        super().delete_model(request, obj)
        transaction.on_commit(reseller_tables_changed)


# The action forms' fields drawn as the rest of the admin (unfold's widgets), not as bare HTML inputs.
class ApproveForm(forms.Form):
    tier = forms.ModelChoiceField(label="代理等级", queryset=ResellerTier.objects.filter(is_active=True),
                                  widget=UnfoldAdminSelectWidget)
    reason = forms.CharField(label="备注", required=False, max_length=200, widget=UnfoldAdminTextInputWidget)


class ReasonForm(forms.Form):
    reason = forms.CharField(label="原因", max_length=200, widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
                             help_text="代理商会在代理后台看到")


class AppointForm(forms.Form):
    username = forms.CharField(label="用户名", max_length=150, widget=UnfoldAdminTextInputWidget)
    tier = forms.ModelChoiceField(label="代理等级", queryset=ResellerTier.objects.filter(is_active=True),
                                  widget=UnfoldAdminSelectWidget)
    reason = forms.CharField(label="备注", required=False, max_length=200, widget=UnfoldAdminTextInputWidget)

    def clean_username(self) -> User:
        user = User.objects.filter(username=self.cleaned_data["username"].strip()).first()
        if user is None:
            raise ValidationError("没有这个用户名的用户")
        return user


def _reseller_or_404(object_id: str) -> Reseller:
    reseller = Reseller.objects.select_related("user", "tier").filter(pk=object_id).first() \
        if str(object_id).isdigit() else None
    if reseller is None:
        raise Http404("代理商不存在")
    return reseller


@admin.register(Reseller)
class ResellerAdmin(ModelAdmin):
    list_display = ("__str__", "user", "tier", "status", "contact_short", "created_at", "reviewed_at")
    list_filter = ("status", "tier")
    search_fields = ("user__username",)  # the contact is encrypted: not searchable
    list_select_related = ("user", "tier")
    # State and tier change only through the actions (kameng.resellers.services), which record who and why.
    readonly_fields = ("user", "status", "tier", "contact", "application_note", "review_reason", "reviewed_by",
                       "reviewed_at", "created_at")
    fields = readonly_fields
    actions_detail = ("approve", "reject", "suspend", "reactivate", "change_tier")
    actions_list = ("appoint",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # staff appoint a reseller with the "任命代理" action

    @display(description="联系方式")
    def contact_short(self, obj: Reseller) -> str:
        """The contact in the list, cut to a column's width (the whole of it on the reseller's page)."""
        contact = str(obj.contact or "")
        return contact if len(contact) <= CONTACT_SHOWN else f"{contact[:CONTACT_SHOWN]}…"

    def delete_model(self, request: HttpRequest, obj: Reseller) -> None:
        super().delete_model(request, obj)
        transaction.on_commit(reseller_tables_changed)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        super().delete_queryset(request, queryset)
        transaction.on_commit(reseller_tables_changed)

    def has_review_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return bool(request.user.has_perm(REVIEW_PERMISSION))

    def _form_page(self, request: HttpRequest, *, title: str, subject: str, form: forms.Form, change_url: str,
                   notes: list[str]) -> HttpResponse:
        return TemplateResponse(request, ACTION_TEMPLATE, {
            **self.admin_site.each_context(request), "title": title, "subject": subject, "opts": Reseller._meta,
            "form": form, "form_id": "reseller-action-form", "change_url": change_url, "notes": notes})

    def _decide(self, request: HttpRequest, object_id: str, *, form_class: type[forms.Form], title: str,
                notes: list[str], decide: Any) -> HttpResponse:
        if not self.has_review_permission(request):
            raise PermissionDenied
        reseller = _reseller_or_404(object_id)
        change_url = reverse("admin:resellers_reseller_change", args=[reseller.pk])
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                decide(reseller, form.cleaned_data, request.user.pk)
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                reseller.refresh_from_db()
                self.message_user(request, f"{reseller}（{reseller.user}）已设为「{reseller.get_status_display()}」"
                                           f"{f'，等级 {reseller.tier}' if reseller.tier else ''}", messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        return self._form_page(request, title=f"{title} · {reseller.user}", subject=str(reseller), form=form,
                               change_url=change_url, notes=notes)

    @action(description="通过申请", url_path="approve", icon="check_circle", permissions=["review"])
    def approve(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide(request, object_id, form_class=ApproveForm, title="通过代理申请",
                            notes=["通过后该用户按所选等级的代理价购买，并可使用代理后台。"],
                            decide=lambda reseller, data, staff_id: reseller_approve(
                                reseller_id=reseller.pk, tier_id=data["tier"].pk, staff_id=staff_id,
                                reason=data["reason"]))

    @action(description="拒绝申请", url_path="reject", icon="block", permissions=["review"])
    def reject(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide(request, object_id, form_class=ReasonForm, title="拒绝代理申请",
                            notes=["申请人会看到原因，可修改后重新申请。"],
                            decide=lambda reseller, data, staff_id: reseller_reject(
                                reseller_id=reseller.pk, staff_id=staff_id, reason=data["reason"]))

    @action(description="停用", url_path="suspend", icon="pause_circle", permissions=["review"])
    def suspend(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide(request, object_id, form_class=ReasonForm, title="停用代理",
                            notes=["停用后按普通价格购买，代理后台的采购、价格等页面关闭。"],
                            decide=lambda reseller, data, staff_id: reseller_suspend(
                                reseller_id=reseller.pk, staff_id=staff_id, reason=data["reason"]))

    @action(description="恢复", url_path="reactivate", icon="play_circle", permissions=["review"])
    def reactivate(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide(request, object_id, form_class=forms.Form, title="恢复代理",
                            notes=["恢复后按原等级的代理价购买。"],
                            decide=lambda reseller, data, staff_id: reseller_reactivate(
                                reseller_id=reseller.pk, staff_id=staff_id))

    @action(description="调整等级", url_path="change-tier", icon="swap_vert", permissions=["review"])
    def change_tier(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide(request, object_id, form_class=ApproveForm, title="调整代理等级",
                            notes=["新等级立即生效（各进程约 1 秒内）。"],
                            decide=lambda reseller, data, staff_id: reseller_tier_change(
                                reseller_id=reseller.pk, tier_id=data["tier"].pk))

    @action(description="任命代理", url_path="appoint", icon="person_add", permissions=["review"])
    def appoint(self, request: HttpRequest) -> HttpResponse:
        if not self.has_review_permission(request):
            raise PermissionDenied
        changelist_url = reverse("admin:resellers_reseller_changelist")
        form = AppointForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                reseller = reseller_appoint(user_id=form.cleaned_data["username"].pk,
                                            tier_id=form.cleaned_data["tier"].pk, staff_id=request.user.pk or 0,
                                            reason=form.cleaned_data["reason"])
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, f"已任命 {form.cleaned_data['username']} 为{reseller.tier}",
                                  messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:resellers_reseller_change", args=[reseller.pk]))
        return self._form_page(request, title="任命代理", subject="任命代理", form=form, change_url=changelist_url,
                               notes=["直接把一个用户设为正常状态的代理（无需申请）。",
                                      f"已申请、被拒绝或已停用的用户也可任命；{ResellerStatus.ACTIVE.label}的代理请用「调整等级」。"])
