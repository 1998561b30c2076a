"""The audit log in the back office: searchable (by operator, action, object, date) and exportable (CSV/XLSX, the
selected entries or all that match the filters), never editable: no add, change or delete for anyone, superusers
included (the database refuses too, on PostgreSQL)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter

from kameng.audit.exports import audit_export
from kameng.audit.models import AuditEntry
from kameng.core.admin import ReadOnlyAdminMixin


def _download(request: HttpRequest, queryset: QuerySet[AuditEntry], file_format: str) -> HttpResponse:
    exported = audit_export(queryset=queryset, file_format=file_format, request=request)
    response = HttpResponse(exported.content, content_type=exported.content_type)
    response["Content-Disposition"] = f'attachment; filename="{exported.filename}"'
    response["Cache-Control"] = "no-store"
    return response


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("created_at", "actor_username", "action", "object_type", "object_id", "object_repr",
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

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {name: action for name, action in super().get_actions(request).items()
                if name != "delete_selected"}

    @admin.action(description="导出 CSV（所选）")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> HttpResponse:
        return _download(request, queryset, "csv")

    @admin.action(description="导出 XLSX（所选）")
    def export_xlsx(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> HttpResponse:
        return _download(request, queryset, "xlsx")
