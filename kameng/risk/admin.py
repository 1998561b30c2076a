"""Back office for risk control (风控): the events, the rules (data, applied within seconds of a save), the
blacklist (one entry or many at once, personal values hashed), the minors' limits and the decisions (read-only,
searchable; 待复核 decisions can be marked reviewed)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from unfold.admin import ModelAdmin
from unfold.decorators import action, display
from unfold.widgets import (
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from kameng.core.admin import ReadOnlyAdminMixin
from kameng.core.errors import ApplicationError
from kameng.risk.blacklist import blacklist_add, blacklist_value
from kameng.risk.models import (
    BlacklistEntry,
    BlacklistKind,
    Decision,
    MinorsPolicy,
    RiskDecision,
    RiskEvent,
    RiskRule,
)

BLACKLIST_ADD_PERMISSION = "risk.add_blacklistentry"


@admin.register(RiskEvent)
class RiskEventAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("created_at", "kind", "severity", "message", "remote_addr", "user")
    list_filter = ("kind", "severity")
    search_fields = ("message", "kind")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    fields = ("created_at", "kind", "severity", "message", "detail", "remote_addr", "user")
    readonly_fields = fields


@admin.register(RiskRule)
class RiskRuleAdmin(ModelAdmin):
    list_display = ("name", "checkpoint", "kind", "dimension", "window_seconds", "limit", "amount_threshold",
                    "action", "priority", "is_enabled", "updated_at")
    list_editable = ("is_enabled",)
    list_filter = ("checkpoint", "kind", "action", "is_enabled")
    search_fields = ("name", "message")
    fieldsets = (
        (None, {"fields": ("name", "checkpoint", "kind", "action", "priority", "is_enabled")}),
        ("条件", {"fields": ("dimension", "window_seconds", "limit", "amount_threshold"),
                "description": "频率限制：同一维度在时间窗口内超过允许次数即触发；金额阈值：高于阈值触发；"
                               "退款频率：时间窗口内退款已达允许次数即触发；黑名单：命中黑名单即触发；"
                               "未成年人限制：限额在「未成年人限额」中设置。保存后数秒内在所有进程生效。"}),
        ("提示", {"fields": ("message",)}),
    )


class BlacklistEntryForm(forms.ModelForm):
    """One entry: what staff type goes through kameng.risk.blacklist (normalised, or hashed if personal)."""

    # Unfold's widgets: a plain forms.CharField would render as a bare, borderless input in the admin's theme.
    text = forms.CharField(label="值", max_length=200, widget=UnfoldAdminTextInputWidget,
                           help_text="IP、IP 段（CIDR）、设备哈希或 X-Device-Id、手机号、用户 ID 或身份证号")

    class Meta:
        model = BlacklistEntry
        fields = ("kind", "text", "reason", "expires_at")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        kind, text = cleaned.get("kind"), cleaned.get("text")
        if kind and text:
            try:
                self.instance.value, self.instance.shown = blacklist_value(kind=kind, text=text)
            except ApplicationError as error:
                self.add_error("text", error.message)
            else:
                clash = BlacklistEntry.objects.filter(kind=kind, value=self.instance.value)
                if self.instance.pk:
                    clash = clash.exclude(pk=self.instance.pk)
                if clash.exists():
                    self.add_error("text", "该值已在黑名单中")
        return cleaned


class BlacklistBulkForm(forms.Form):
    kind = forms.ChoiceField(label="类型", choices=BlacklistKind.choices, widget=UnfoldAdminSelectWidget)
    lines = forms.CharField(label="值（每行一个）", widget=UnfoldAdminTextareaWidget(attrs={"rows": 12}))
    reason = forms.CharField(label="原因", max_length=200, required=False, widget=UnfoldAdminTextInputWidget)
    expires_at = forms.DateTimeField(label="过期时间", required=False, help_text="留空表示永久，例如 2026-12-31 23:59",
                                     widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "2026-12-31 23:59"}))


@admin.register(BlacklistEntry)
class BlacklistEntryAdmin(ModelAdmin):
    form = BlacklistEntryForm
    list_display = ("kind", "shown", "reason", "expires_at", "created_by", "created_at")
    list_filter = ("kind",)
    search_fields = ("shown", "reason", "value")
    list_select_related = ("created_by",)
    actions_list = ("open_bulk_add",)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            form.base_fields["text"].required = False
            form.base_fields["text"].help_text = f"当前：{obj.shown}（留空保持不变）"
        return form

    def save_model(self, request: HttpRequest, obj: BlacklistEntry, form: Any, change: bool) -> None:
        if not change:
            obj.created_by_id = request.user.pk
        super().save_model(request, obj, form, change)

    @action(description="批量添加", icon="playlist_add", url_path="bulk-add")
    def open_bulk_add(self, request: HttpRequest) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:risk_blacklistentry_bulk_add"))

    def get_urls(self) -> list[URLPattern]:
        return [path("bulk/", self.admin_site.admin_view(self.bulk_add_view), name="risk_blacklistentry_bulk_add"),
                *super().get_urls()]

    def bulk_add_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(BLACKLIST_ADD_PERMISSION):
            raise PermissionDenied
        form = BlacklistBulkForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            values = [line.strip() for line in data["lines"].splitlines()
                      if line.strip() and not line.strip().startswith("#")]
            problems = []
            for line_number, text in enumerate(values, start=1):
                try:
                    blacklist_value(kind=data["kind"], text=text)
                except ApplicationError as error:
                    problems.append(f"第 {line_number} 行：{error.message}")
            if problems:
                form.add_error("lines", problems[:20])
            else:
                for text in values:
                    blacklist_add(kind=data["kind"], text=text, reason=data["reason"],
                                  expires_at=data["expires_at"], staff_id=request.user.pk)
                messages.success(request, f"已加入黑名单 {len(values)} 条")
                return HttpResponseRedirect(reverse("admin:risk_blacklistentry_changelist"))
        context = {**self.admin_site.each_context(request), "title": "批量添加黑名单", "opts": self.model._meta,
                   "form": form}
        return TemplateResponse(request, "admin/risk/blacklistentry/bulk_add.html", context)


@admin.register(MinorsPolicy)
class MinorsPolicyAdmin(ModelAdmin):
    fieldsets = (
        ("年龄（周岁，按实名身份证计算）", {"fields": ("minimum_age", "child_age", "adult_age")}),
        ("低龄段（最低年龄至低龄段上限）", {"fields": ("child_per_payment", "child_per_month")}),
        ("高龄段（低龄段上限至成年）", {"fields": ("teen_per_payment", "teen_per_month")}),
        ("实名", {"fields": ("require_verification",)}),
    )
    list_display = ("__str__", "minimum_age", "child_per_payment", "child_per_month", "teen_per_payment",
                    "teen_per_month", "require_verification", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not MinorsPolicy.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PendingReviewFilter(admin.SimpleListFilter):
    title = "复核"
    parameter_name = "review"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("pending", "待复核"), ("done", "已复核")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[RiskDecision]) -> QuerySet[RiskDecision]:
        if self.value() == "pending":
            return queryset.filter(decision=Decision.REVIEW, reviewed_at__isnull=True)
        if self.value() == "done":
            return queryset.filter(reviewed_at__isnull=False)
        return queryset


@admin.register(RiskDecision)
class RiskDecisionAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("created_at", "checkpoint", "decision", "rule_name", "reason", "user", "ip", "device_short",
                    "reviewed_at")
    list_filter = ("checkpoint", "decision", PendingReviewFilter)
    search_fields = ("user__username", "=ip", "=device_hash", "rule_name", "reason")
    list_select_related = ("user", "reviewed_by")
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = ("created_at", "checkpoint", "decision", "rule", "rule_name", "reason", "inputs", "user", "ip",
              "device_hash", "reviewed_at", "reviewed_by")
    readonly_fields = fields
    actions = ("mark_reviewed",)

    @display(description="设备")
    def device_short(self, obj: RiskDecision) -> str:
        return f"{obj.device_hash[:12]}…" if obj.device_hash else "-"

    def has_review_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("risk.view_riskdecision"))

    @admin.action(description="标记为已复核", permissions=["review"])
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[RiskDecision]) -> None:
        count = queryset.filter(reviewed_at__isnull=True).update(reviewed_at=timezone.now(),
                                                                 reviewed_by_id=request.user.pk)
        self.message_user(request, f"已标记 {count} 条为已复核", messages.SUCCESS)
