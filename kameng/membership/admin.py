"""Staff pages of membership: levels (thresholds, rates, benefits), member prices, and members (read only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin

from kameng.membership.models import MemberLevel, MemberPrice, Membership
from kameng.membership.services import member_levels_recompute, member_prices_changed


@admin.register(MemberLevel)
class MemberLevelAdmin(ModelAdmin):
    list_display = ("rank", "name", "threshold", "discount_rate")
    ordering = ("rank",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        member_levels_recompute()  # new thresholds move members now, not at their next order

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        member_levels_recompute()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().delete_queryset(request, queryset)
        member_levels_recompute()


@admin.register(MemberPrice)
class MemberPriceAdmin(ModelAdmin):
    list_display = ("level", "sku", "category", "price", "discount_rate")
    list_filter = ("level",)
    search_fields = ("sku__name", "sku__product__name", "category__name")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        member_prices_changed()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        member_prices_changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().delete_queryset(request, queryset)
        member_prices_changed()


@admin.register(Membership)
class MembershipAdmin(ModelAdmin):
    """Spend is counted from orders (kameng.membership.services); staff read it here and never type it."""

    list_display = ("user", "level_rank", "spend", "updated_at")
    list_filter = ("level_rank",)
    search_fields = ("user__username",)
    readonly_fields = ("user", "spend", "level_rank", "updated_at")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
