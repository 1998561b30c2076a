"""The audit log in the back office: searchable (by operator, action, object, date) and exportable (CSV/XLSX, the
selected entries or all that match the filters), never editable: no add, change or delete for anyone, superusers
included (the database refuses too, on PostgreSQL)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.decorators import display

from kameng.audit.exports import audit_export
from kameng.audit.models import AuditEntry
from kameng.core.admin import ReadOnlyAdminMixin

# What staff read for an action code (the code stays beside it: it is what the search and the export hold).
ACTION_LABELS = {
    "admin.add": "新增", "admin.change": "修改", "admin.delete": "删除",
    "aml_review.approve": "充值审核通过", "aml_review.reject": "充值审核驳回",
    "aml_review.refund_again": "重新原路退款", "audit.export": "导出审计日志", "refund.create": "退款",
    "staff_otp.enrolled": "绑定身份验证器", "staff_otp.failed": "两步验证失败", "staff_otp.reauth": "敏感操作再次验证",
    "staff_otp.recovery_code_used": "使用恢复码", "staff_otp.throttled": "验证码错误过多",
    "supplier_tax_report.export": "导出涉税信息", "supplier_withdrawal.pay": "供货商提现打款",
    "supplier_withdrawal.reject": "供货商提现驳回",
}


# django-otp's static device has an English name only; it is shown as 恢复码 (kameng.accounts.staff_models).
OBJECT_TYPE_LABELS = {"otp_static.staticdevice": "恢复码"}


def object_type_label(object_type: str) -> str:
    """"accounts.user" as its model's Chinese name (用户), or as it is when no such model is installed."""
    if object_type in OBJECT_TYPE_LABELS:
        return OBJECT_TYPE_LABELS[object_type]
    app_label, _, model_name = object_type.partition(".")
    try:
        return str(apps.get_model(app_label, model_name)._meta.verbose_name)
    except (LookupError, ValueError):
        return object_type


def _download(request: HttpRequest, queryset: QuerySet[AuditEntry], file_format: str) -> HttpResponse:
    exported = audit_export(queryset=queryset, file_format=file_format, request=request)
    response = HttpResponse(exported.content, content_type=exported.content_type)
    response["Content-Disposition"] = f'attachment; filename="{exported.filename}"'
    response["Cache-Control"] = "no-store"
    return response


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("created_at", "actor_username", "action_shown", "object_type_shown", "object_id", "object_repr",
                    "ip_address")
    list_filter = (("created_at", RangeDateTimeFilter), "action", "object_type")
    list_filter_submit = True
    search_fields = ("=actor_username", "action", "object_type", "=object_id", "object_repr", "message")
    date_hierarchy = "created_at"
    fields = ("created_at", "actor", "actor_username", "action", "object_type", "object_id", "object_repr",
              "before", "after", "message", "ip_address", "user_agent")
    readonly_fields = fields
    actions = ("export_csv", "export_xlsx")
    show_full_result_count = False

    @display(description="操作", ordering="action")
    def action_shown(self, entry: AuditEntry) -> str:
        label = ACTION_LABELS.get(entry.action)
        return f"{label}（{entry.action}）" if label else entry.action

    @display(description="对象类型", ordering="object_type")
    def object_type_shown(self, entry: AuditEntry) -> str:
        return object_type_label(entry.object_type) if entry.object_type else "-"

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {name: action for name, action in super().get_actions(request).items()
                if name != "delete_selected"}

    @admin.action(description="导出 CSV（所选）")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> HttpResponse:
        return _download(request, queryset, "csv")

    @admin.action(description="导出 XLSX（所选）")
    def export_xlsx(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> HttpResponse:
        return _download(request, queryset, "xlsx")
