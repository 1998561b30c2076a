"""Staff pages of the Open API notifications (回调通知): every delivery with its attempt log, read-only, and an
action to send given-up ones again (kameng.resellers.notify). The payload shown never holds card secrets."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin, TabularInline

from kameng.core.errors import ApplicationError
from kameng.resellers.models import NotifyAttempt, NotifyDelivery, NotifyState
from kameng.resellers.notify import notify_resend


class NotifyAttemptInline(TabularInline):
    model = NotifyAttempt
    extra = 0
    can_delete = False
    ordering = ("-attempt_no",)
    fields = ("attempt_no", "started_at", "duration_ms", "status_code", "response_excerpt", "error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(NotifyDelivery)
class NotifyDeliveryAdmin(ModelAdmin):
    list_display = ("pk", "order_number", "request_no", "reseller", "status", "state", "attempts",
                    "next_attempt_at", "created_at", "finished_at")
    list_filter = ("state", "status")
    search_fields = ("openapi_order__order__number", "openapi_order__request_no", "url")
    list_select_related = ("openapi_order__order", "openapi_order__reseller")
    readonly_fields = ("openapi_order", "status", "url", "payload", "state", "attempts", "next_attempt_at",
                       "created_at", "finished_at")
    inlines = (NotifyAttemptInline,)
    actions = ("resend",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="订单号", ordering="openapi_order__order__number")
    def order_number(self, delivery: NotifyDelivery) -> str:
        return delivery.openapi_order.order.number

    @admin.display(description="请求号")
    def request_no(self, delivery: NotifyDelivery) -> str:
        return delivery.openapi_order.request_no

    @admin.display(description="代理商")
    def reseller(self, delivery: NotifyDelivery) -> str:
        return str(delivery.openapi_order.reseller)

    @admin.action(description="重新发送（仅限已放弃的回调）")
    def resend(self, request: HttpRequest, queryset: QuerySet[NotifyDelivery]) -> None:
        sent = 0
        for delivery_id in queryset.filter(state=NotifyState.GAVE_UP).values_list("pk", flat=True):
            try:
                notify_resend(delivery_id=delivery_id)
            except ApplicationError as error:
                self.message_user(request, f"#{delivery_id}：{error.message}", messages.WARNING)
                continue
            sent += 1
        self.message_user(request, f"已重新发送 {sent} 条回调（其他状态的回调不会重发）", messages.SUCCESS)
