"""Staff pages for Open API keys and the orders placed through them. A key's secret is never shown (not even
masked): staff see the key id, its reseller, its IP allow-list and its use, and may revoke it."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from unfold.admin import ModelAdmin

from kameng.resellers.models import ApiKey, OpenApiOrder


@admin.register(ApiKey)
class ApiKeyAdmin(ModelAdmin):
    list_display = ("key_id", "name", "reseller", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("key_id", "name", "reseller__user__username")
    raw_id_fields = ("reseller",)
    exclude = ("secret",)
    readonly_fields = ("key_id", "reseller", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by the reseller in its console, where the secret is shown to it once

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).defer("secret").select_related("reseller")

    @admin.action(description="吊销所选密钥")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"已吊销 {count} 个密钥", messages.SUCCESS)


@admin.register(OpenApiOrder)
class OpenApiOrderAdmin(ModelAdmin):
    list_display = ("request_no", "order", "reseller", "api_key", "notify_url", "created_at")
    search_fields = ("request_no", "order__number")
    raw_id_fields = ("order", "reseller", "api_key")
    readonly_fields = ("order", "reseller", "api_key", "request_no", "body_digest", "notify_url", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[OpenApiOrder]:
        return super().get_queryset(request).select_related("order", "reseller", "api_key").defer("api_key__secret")
