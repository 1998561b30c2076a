"""Staff pages of supplier onboarding: the review action (approve, reject or ask for more, with a reason), the
company data, documents, agreement acceptances, reviews and sample tests shown on a supplier's page (personal data
masked), the agreement versions, and sample tests with the "take N sample keys at cost" action."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from unfold.admin import ModelAdmin, StackedInline, TabularInline
from unfold.decorators import action

from kameng.accounts.identity import mask_id_number, mask_name
from kameng.core.admin import ReadOnlyAdminMixin
from kameng.core.errors import ApplicationError
from kameng.core.masking import mask_phone
from kameng.suppliers.models import (
    AgreementAcceptance,
    SampleTest,
    Supplier,
    SupplierAgreement,
    SupplierDocument,
    SupplierProfile,
    SupplierReview,
    SupplierStatus,
)
from kameng.suppliers.onboarding import (
    MISSING_MESSAGES,
    ReviewDecision,
    legal_person_is_verified,
    onboarding_missing,
    supplier_review,
)
from kameng.suppliers.sampling import MAX_SAMPLE_KEYS, sample_test_secrets, sample_test_take_keys

REVIEW_PERMISSION = "suppliers.change_supplier"


def _object_or_404(model: Any, object_id: str) -> Any:
    if not str(object_id).isdigit():
        raise Http404("不存在")
    return get_object_or_404(model, pk=object_id)


class _ReadOnlyInline(ReadOnlyAdminMixin, TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False
    hide_title = True


class SupplierProfileInline(ReadOnlyAdminMixin, StackedInline):
    model = SupplierProfile
    can_delete = False
    fields = ("company_name", "credit_code", "legal_person", "legal_person_status", "contact", "business_scope",
              "updated_at")
    readonly_fields = fields

    @admin.display(description="法定代表人（脱敏）")
    def legal_person(self, profile: SupplierProfile) -> str:
        real_name = profile.legal_person_real_name
        number = mask_id_number(str(real_name.id_number)) if real_name and real_name.id_number else "—"
        return f"{mask_name(str(profile.legal_person_name or ''))} · {number}"

    @admin.display(description="法人实名")
    def legal_person_status(self, profile: SupplierProfile) -> str:
        if legal_person_is_verified(profile):
            return f"已认证（{timezone.localtime(profile.legal_person_verified_at):%Y-%m-%d %H:%M}）"
        return "未认证"

    @admin.display(description="联系人（脱敏）")
    def contact(self, profile: SupplierProfile) -> str:
        return f"{mask_name(str(profile.contact_name or ''))} · {mask_phone(str(profile.contact_phone or ''))}"


class SupplierDocumentInline(_ReadOnlyInline):
    model = SupplierDocument
    fields = ("kind", "product", "download", "content_type", "size", "uploaded_at")
    readonly_fields = fields

    @admin.display(description="文件")
    def download(self, document: SupplierDocument) -> str:
        return format_html('<a href="{}">{}</a>', reverse("web:supplier_document", args=[document.pk]),
                           document.original_name or document.stored_name)


class AgreementAcceptanceInline(_ReadOnlyInline):
    model = AgreementAcceptance
    fields = ("version", "accepted_at", "ip_address")
    readonly_fields = fields


class SupplierReviewInline(_ReadOnlyInline):
    model = SupplierReview
    fields = ("created_at", "from_status", "to_status", "reason", "staff")
    readonly_fields = fields


class SampleTestInline(_ReadOnlyInline):
    model = SampleTest
    fields = ("offer", "quantity", "ordered_at", "delivered_at", "delivery_time", "result", "note", "cost")
    readonly_fields = fields
    show_change_link = True

    @admin.display(description="到货用时")
    def delivery_time(self, test: SampleTest) -> str:
        seconds = test.delivery_seconds
        return "—" if seconds is None else f"{seconds} 秒"


# The decisions open to staff in each status (the service refuses any other move too).
REVIEW_CHOICES: dict[str, list[tuple[str, str]]] = {
    SupplierStatus.PENDING_REVIEW: [(ReviewDecision.APPROVE.value, "通过"),
                                    (ReviewDecision.NEEDS_MORE.value, "需补充资料"),
                                    (ReviewDecision.REJECT.value, "拒绝")],
    SupplierStatus.APPROVED: [(ReviewDecision.SUSPEND.value, "暂停供货（不再分配订单）")],
    SupplierStatus.SUSPENDED: [(ReviewDecision.APPROVE.value, "恢复供货")],
}


class SupplierReviewForm(forms.Form):
    decision = forms.ChoiceField(label="审核结果", widget=forms.RadioSelect, choices=[])
    reason = forms.CharField(label="原因 / 需补充的内容", required=False, max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 4}),
                             help_text="供货商会在后台概览页看到；通过以外的决定必填")

    def __init__(self, *args: Any, status: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        decision = self.fields["decision"]
        assert isinstance(decision, forms.ChoiceField)
        decision.choices = REVIEW_CHOICES.get(status, [])


class SupplierOnboardingAdminMixin:
    """Mixed into SupplierAdmin: onboarding inlines and the review action."""

    inlines = (SupplierProfileInline, SupplierDocumentInline, AgreementAcceptanceInline, SampleTestInline,
               SupplierReviewInline)
    actions_detail = ("review",)

    def has_review_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return bool(request.user.has_perm(REVIEW_PERMISSION))

    @admin.display(description="缺少的资料")
    def missing_items(self, supplier: Supplier) -> str:
        missing = onboarding_missing(supplier=supplier)
        return "；".join(MISSING_MESSAGES[item] for item in missing) or "无"

    @action(description="审核", url_path="review", icon="fact_check", permissions=["review"])
    def review(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_review_permission(request):
            raise PermissionDenied
        supplier = _object_or_404(Supplier, object_id)
        change_url = reverse("admin:suppliers_supplier_change", args=[supplier.pk])
        if supplier.status not in REVIEW_CHOICES:
            self.message_user(request, f"供货商状态为「{supplier.get_status_display()}」，没有可做的审核",  # type: ignore[attr-defined]
                              messages.ERROR)
            return HttpResponseRedirect(change_url)
        form = SupplierReviewForm(request.POST or None, status=supplier.status)
        if request.method == "POST" and form.is_valid():
            try:
                supplier_review(supplier_id=supplier.pk, decision=ReviewDecision(form.cleaned_data["decision"]),
                                reason=form.cleaned_data["reason"], staff_id=request.user.pk or 0)
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                supplier.refresh_from_db()
                self.message_user(request, f"供货商 {supplier.name} 已设为「{supplier.get_status_display()}」",  # type: ignore[attr-defined]
                                  messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        return TemplateResponse(request, "admin/suppliers/action_form.html", {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": f"审核供货商 · {supplier.name}", "subject": supplier.name, "opts": Supplier._meta,
            "form": form, "form_id": "supplier-review-form", "change_url": change_url,
            "notes": ["通过前须有一次结果为「有效」的样品测试（KAMENG_SUPPLIER_SAMPLE_TEST_REQUIRED）。",
                      "拒绝、需补充资料或暂停时请写明原因，供货商在后台概览页看到。",
                      "需补充资料：供货商可修改资料后重新提交。拒绝为最终结果。"],
        })


@admin.register(SupplierAgreement)
class SupplierAgreementAdmin(ModelAdmin):
    list_display = ("version", "published_at")
    fields = ("version", "text", "published_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # A version suppliers accepted is what they accepted: publish a new version rather than edit it.
        return ("version", "text", "published_at") if obj is not None and obj.acceptances.exists() else ()


class SampleKeysForm(forms.Form):
    quantity = forms.IntegerField(label="取样数量（张）", min_value=1, max_value=MAX_SAMPLE_KEYS)


@admin.register(SampleTest)
class SampleTestAdmin(ModelAdmin):
    list_display = ("pk", "supplier", "offer", "quantity", "ordered_at", "delivered_at", "result", "cost")
    list_filter = ("result",)
    raw_id_fields = ("supplier", "offer")
    fields = ("supplier", "offer", "quantity", "ordered_at", "delivered_at", "result", "note", "cost",
              "sample_secrets", "recorded_by")
    readonly_fields = ("cost", "sample_secrets", "recorded_by")
    actions_detail = ("take_keys",)

    def save_model(self, request: HttpRequest, obj: SampleTest, form: Any, change: bool) -> None:
        obj.recorded_by_id = request.user.pk
        super().save_model(request, obj, form, change)

    @admin.display(description="样品卡密（供测试）")
    def sample_secrets(self, test: SampleTest) -> str:
        secrets = sample_test_secrets(sample_test=test) if test.pk else []
        if not secrets:
            return "—"
        return format_html_join(mark_safe("<br>"), "<code>{}</code>", ((secret,) for secret in secrets))

    def has_take_keys_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return bool(request.user.has_perm("suppliers.change_sampletest"))

    @action(description="按供货价取样品卡密", url_path="take-keys", icon="inventory", permissions=["take_keys"])
    def take_keys(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_take_keys_permission(request):
            raise PermissionDenied
        test = _object_or_404(SampleTest, object_id)
        change_url = reverse("admin:suppliers_sampletest_change", args=[test.pk])
        form = SampleKeysForm(request.POST or None, initial={"quantity": test.quantity})
        if request.method == "POST" and form.is_valid():
            try:
                sample_test_take_keys(sample_test_id=test.pk, quantity=form.cleaned_data["quantity"])
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, f"已取 {form.cleaned_data['quantity']} 张样品卡密，请测试后记录结果",
                                  messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        return TemplateResponse(request, "admin/suppliers/action_form.html", {
            **self.admin_site.each_context(request), "title": f"取样品卡密 · 样品测试 #{test.pk}",
            "subject": f"样品测试 #{test.pk}", "opts": SampleTest._meta, "form": form,
            "form_id": "sample-keys-form", "change_url": change_url,
            "notes": ["从该供货商上传的可售卡密中取出 N 张，标为已售出（不生成买家订单），"
                      "按上传时的供货价计入样品成本。",
                      "卡密显示在样品测试页面上，测试后请记录结果（有效 / 无效）和说明。"],
        })
