"""Staff pages for supplier money: settlements (read only), withdrawals with their review (paid by bank transfer /
rejected, each on a confirmation page), and the quarterly tax report export (logged, full ID numbers in the file
only). Imported by kameng/suppliers/admin.py."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action

from kameng.accounts.staff_reauth import staff_reauth_required, staff_reauth_response
from kameng.audit.services import audit_record
from kameng.core.admin import AdminThemeFormMixin, ReadOnlyAdminMixin
from kameng.core.errors import ApplicationError
from kameng.core.masking import Revealed, mask_person_name
from kameng.suppliers.models import (
    SettlementMovement,
    SupplierSettlement,
    SupplierWithdrawal,
    TaxReportExport,
    WithdrawalStatus,
)
from kameng.suppliers.tax_report import FORMATS, SENSITIVE_NOTICE, tax_report_export, tax_report_rows
from kameng.suppliers.withdrawals import mask_bank_account, supplier_withdrawal_pay, supplier_withdrawal_reject

REVIEW_PERMISSION = "suppliers.change_supplierwithdrawal"
TAX_EXPORT_PERMISSION = "suppliers.add_taxreportexport"

# What the withdrawal review pages say beside the form (admin/suppliers/action_form.html).
REVIEW_NOTES = ("已打款：请先通过银行转账向上述账户打款，再填写银行流水号确认；资金从「提现审核中」转出。",
                "驳回：金额退回供货商应付余额，原因显示在供货商后台。",
                "每笔申请只能审核一次。")


class MovementInline(ReadOnlyAdminMixin, TabularInline):
    model = SettlementMovement
    fk_name = "settlement"
    extra = 0
    fields = ("kind", "cost", "tax", "payable", "debt", "journal")
    readonly_fields = fields


@admin.register(SupplierSettlement)
class SupplierSettlementAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("order", "supplier", "delivered_cost", "cost", "tax", "tax_rate", "created_at")
    search_fields = ("order__number", "supplier__name")
    list_select_related = ("order", "supplier")
    fields = ("order", "supplier", "tax_rate", "delivered_cost", "cost", "tax", "journals", "created_at",
              "updated_at")
    readonly_fields = fields
    inlines = (MovementInline,)


class PayForm(AdminThemeFormMixin, forms.Form):
    transfer_reference = forms.CharField(label="银行转账流水号", max_length=100)
    confirm = forms.BooleanField(label="我已通过银行转账向上述账户打款，金额无误")


class RejectForm(AdminThemeFormMixin, forms.Form):
    reason = forms.CharField(label="驳回原因（供货商可见）", max_length=200)


@admin.register(SupplierWithdrawal)
class SupplierWithdrawalAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("number", "supplier", "amount", "status", "bank_name", "masked_account", "created_at",
                    "reviewed_at")
    list_filter = ("status",)
    search_fields = ("number", "supplier__name", "transfer_reference")
    list_select_related = ("supplier",)
    fields = ("number", "supplier", "amount", "status", "bank_name", "masked_account_name", "masked_account",
              "transfer_reference", "rejection_reason", "reviewed_by", "reviewed_at", "created_at")
    readonly_fields = fields
    actions_detail: tuple[str, ...] = ("pay", "reject")

    @admin.display(description="银行账号")
    def masked_account(self, withdrawal: SupplierWithdrawal) -> str:
        return mask_bank_account(str(withdrawal.account_number or ""))

    @admin.display(description="户名")
    def masked_account_name(self, withdrawal: SupplierWithdrawal) -> str:
        return mask_person_name(str(withdrawal.account_name or ""))

    def has_review_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return bool(request.user.has_perm(REVIEW_PERMISSION))

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> list[Any]:
        """Offer the review buttons only while the withdrawal waits for review."""
        actions = super().get_actions_detail(request, object_id)
        if not SupplierWithdrawal.objects.filter(pk=object_id, status=WithdrawalStatus.REQUESTED).exists():
            return []
        return actions

    def _withdrawal(self, request: HttpRequest, object_id: str) -> SupplierWithdrawal:
        if not self.has_review_permission(request):
            raise PermissionDenied
        if not str(object_id).isdigit():
            raise Http404("提现申请不存在")
        return get_object_or_404(SupplierWithdrawal.objects.select_related("supplier"), pk=object_id)

    def _page(self, request: HttpRequest, withdrawal: SupplierWithdrawal, form: forms.Form | None, title: str,
              *, show_account: bool) -> HttpResponse:
        """The review form while the withdrawal waits for review; once reviewed, its outcome read only (a page
        kept open or an old link must not offer a second review)."""
        if withdrawal.status != WithdrawalStatus.REQUESTED:
            form, show_account = None, False
            title = f"提现 {withdrawal.number} · {withdrawal.get_status_display()}"
        return TemplateResponse(request, "admin/suppliers/supplierwithdrawal/review.html", {
            **self.admin_site.each_context(request), "title": title, "opts": self.model._meta,
            "subject": withdrawal.number, "form_id": "withdrawal-review-form", "notes": REVIEW_NOTES,
            "withdrawal": withdrawal, "form": form,
            "account": Revealed(withdrawal.account_number or "") if show_account else mask_bank_account(
                str(withdrawal.account_number or "")),
            "account_name": Revealed(withdrawal.account_name or "") if show_account else mask_person_name(
                str(withdrawal.account_name or "")),
            "change_url": reverse("admin:suppliers_supplierwithdrawal_change", args=[withdrawal.pk]),
        })

    @action(description="已打款", url_path="pay", icon="payments", permissions=["review"])
    @staff_reauth_required
    def pay(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Record the bank transfer that paid the withdrawal (the full account number and holder's name are shown
        here, to pay it)."""
        withdrawal = self._withdrawal(request, object_id)
        form = PayForm(request.POST or None)
        if request.method == "POST" and withdrawal.status == WithdrawalStatus.REQUESTED and form.is_valid():
            try:
                supplier_withdrawal_pay(withdrawal_id=withdrawal.pk, reviewer_id=request.user.pk,
                                        transfer_reference=form.cleaned_data["transfer_reference"])
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                audit_record(action="supplier_withdrawal.pay", request=request, instance=withdrawal,
                             before={"status": withdrawal.status},
                             after={"status": WithdrawalStatus.PAID, "amount": withdrawal.amount,
                                    "transfer_reference": form.cleaned_data["transfer_reference"]})
                self.message_user(request, f"提现 {withdrawal.number} 已标记为已打款", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:suppliers_supplierwithdrawal_change",
                                                    args=[withdrawal.pk]))
        return self._page(request, withdrawal, form, f"确认打款 · {withdrawal.number}", show_account=True)

    @action(description="驳回", url_path="reject", icon="block", permissions=["review"])
    @staff_reauth_required
    def reject(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Reject the withdrawal with a reason the supplier reads; its money goes back to the payable."""
        withdrawal = self._withdrawal(request, object_id)
        form = RejectForm(request.POST or None)
        if request.method == "POST" and withdrawal.status == WithdrawalStatus.REQUESTED and form.is_valid():
            try:
                supplier_withdrawal_reject(withdrawal_id=withdrawal.pk, reviewer_id=request.user.pk,
                                           reason=form.cleaned_data["reason"])
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                audit_record(action="supplier_withdrawal.reject", request=request, instance=withdrawal,
                             before={"status": withdrawal.status},
                             after={"status": WithdrawalStatus.REJECTED, "amount": withdrawal.amount,
                                    "reason": form.cleaned_data["reason"]})
                self.message_user(request, f"提现 {withdrawal.number} 已驳回，¥{withdrawal.amount} 已退回供货商应付",
                                  messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:suppliers_supplierwithdrawal_change",
                                                    args=[withdrawal.pk]))
        return self._page(request, withdrawal, form, f"驳回提现 · {withdrawal.number}", show_account=False)


class TaxReportForm(AdminThemeFormMixin, forms.Form):
    quarter = forms.RegexField(label="季度", regex=r"^\d{4}[Qq][1-4]$", max_length=6,
                               error_messages={"invalid": "季度格式应为 2026Q4 这样的形式"})
    file_format = forms.ChoiceField(label="格式", choices=[(value, value.upper()) for value in FORMATS])


@admin.register(TaxReportExport)
class TaxReportExportAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """The export log; the report page itself is at …/taxreportexport/report/."""

    list_display = ("quarter", "file_format", "exported_by", "via", "rows", "created_at")
    fields = list_display
    readonly_fields = fields
    actions_list = ("open_report",)

    @action(description="季度涉税信息报送", icon="description", url_path="open-report")
    def open_report(self, request: HttpRequest) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:suppliers_taxreportexport_report"))

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.report_view)
        return [path("report/", view, name="suppliers_taxreportexport_report"), *super().get_urls()]

    def report_view(self, request: HttpRequest) -> HttpResponse:
        """Preview the quarter (ID numbers masked); the download holds them in full and is logged."""
        if not request.user.has_perm(TAX_EXPORT_PERMISSION):
            raise PermissionDenied
        form = TaxReportForm(request.POST or request.GET or None)
        rows = []
        if form.is_valid():
            quarter = form.cleaned_data["quarter"].upper()
            if request.method == "POST":
                # The file holds full ID numbers: a code again, and the export in the audit log too.
                challenge = staff_reauth_response(request)
                if challenge is not None:
                    return challenge
                report = tax_report_export(quarter=quarter, file_format=form.cleaned_data["file_format"],
                                           exported_by_id=request.user.pk, via="admin")
                audit_record(action="supplier_tax_report.export", request=request,
                             object_type="suppliers.taxreportexport", object_repr=quarter,
                             after={"quarter": quarter, "format": form.cleaned_data["file_format"],
                                    "rows": report.rows})
                response = HttpResponse(report.content, content_type=report.content_type)
                response["Content-Disposition"] = f'attachment; filename="{report.filename}"'
                response["Cache-Control"] = "no-store"
                return response
            rows = tax_report_rows(quarter=quarter)
        return TemplateResponse(request, "admin/suppliers/taxreportexport/report.html", {
            **self.admin_site.each_context(request), "title": "季度涉税信息报送", "opts": self.model._meta,
            "form": form, "rows": rows, "notice": SENSITIVE_NOTICE,
        })
