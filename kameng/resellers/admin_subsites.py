"""Staff pages for sub-sites (分站): the list, opening and closing one, taking a custom domain's verification back.

A sub-site's settings are its reseller's (the console); staff change only whether it is served and whether its
domain is. Each action goes through kameng.resellers.subsites so the routing caches follow.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin, TabularInline

from kameng.resellers.models import SubSite, SubSitePrice
from kameng.resellers.subsites import domain_unverify, subsite_enabled_set


class SubSitePriceInline(TabularInline):
    model = SubSitePrice
    extra = 0
    raw_id_fields = ("sku",)
    readonly_fields = ("sku", "markup_kind", "markup_value")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(SubSite)
class SubSiteAdmin(ModelAdmin):
    list_display = ("slug", "title", "reseller", "markup_kind", "markup_value", "is_enabled", "custom_domain",
                    "domain_verified_at", "updated_at")
    list_filter = ("is_enabled", "markup_kind")
    search_fields = ("slug", "title", "custom_domain")
    list_select_related = ("reseller",)
    readonly_fields = ("reseller", "slug", "title", "logo", "notice", "markup_kind", "markup_value", "is_enabled",
                       "custom_domain", "domain_token", "domain_verified_at", "created_at", "updated_at")
    inlines = (SubSitePriceInline,)
    actions = ("disable", "enable", "unverify_domain")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a reseller opens its sub-site in its console

    @admin.action(description="关闭所选分站（访问返回 404）")
    def disable(self, request: HttpRequest, queryset: QuerySet[SubSite]) -> None:
        count = subsite_enabled_set(subsite_ids=list(queryset.values_list("pk", flat=True)), is_enabled=False)
        self.message_user(request, f"已关闭 {count} 个分站", messages.SUCCESS)

    @admin.action(description="开放所选分站")
    def enable(self, request: HttpRequest, queryset: QuerySet[SubSite]) -> None:
        count = subsite_enabled_set(subsite_ids=list(queryset.values_list("pk", flat=True)), is_enabled=True)
        self.message_user(request, f"已开放 {count} 个分站", messages.SUCCESS)

    @admin.action(description="撤销所选分站的域名验证（该域名立即停止服务，需代理重新验证）")
    def unverify_domain(self, request: HttpRequest, queryset: QuerySet[SubSite]) -> None:
        count = domain_unverify(subsite_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"已撤销 {count} 个域名的验证", messages.SUCCESS)
