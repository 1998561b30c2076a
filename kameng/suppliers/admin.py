"""Staff pages for suppliers, their offers, routing rules, direct top-up attempts, rating weights and snapshots,
and restock requests; onboarding (review, documents, sample tests) in admin_onboarding.py, supplier money in
money_admin.py."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action

from kameng.core.errors import ApplicationError
from kameng.suppliers import money_admin  # noqa: F401 - registers the supplier money pages
from kameng.suppliers.admin_forms import SupplierAdminForm, connector_config_masked
from kameng.suppliers.admin_onboarding import SupplierOnboardingAdminMixin
from kameng.suppliers.models import (
    WEIGHT_FIELDS,
    RatingSnapshot,
    RatingWeights,
    RestockRequest,
    RestockWebhookAttempt,
    SkuRoutingRule,
    Supplier,
    SupplierOffer,
    TopupAttempt,
)
from kameng.suppliers.selectors import (
    no_route_reasons,
    offer_at_loss_q,
    offer_is_at_loss,
    topup_orders_without_attempts,
)
from kameng.suppliers.topup import attempt_review_settle

ATTEMPT_REVIEW_PERMISSION = "suppliers.change_topupattempt"
# What the attempt review page says beside the form (admin/suppliers/action_form.html).
ATTEMPT_REVIEW_NOTES = (
    "请先与供货商核对这笔提交的最终结果，再记录结论。",
    "已到账：填写运营商流水号；尚未结束的提交随即完成，订单到账、资金转入收入。",
    "充值失败：尚未结束的提交按失败处理——换下一个供货商重试，没有可用供货商时全额退回买家余额（只退一次）。",
    "已结束的提交（如失败后供货商又报成功）：只记录结论，订单与资金不再变动。",
    "核查说明与结论写入订单的内部时间线。",
)


@admin.register(Supplier)
class SupplierAdmin(SupplierOnboardingAdminMixin, ModelAdmin):
    list_display = ("name", "status", "connector_kind", "rating", "tax_rate", "last_sync_at", "last_sync_error",
                    "created_at")
    list_filter = ("status", "connector_kind")
    search_fields = ("name",)
    form = SupplierAdminForm
    exclude = ("connector_config",)
    raw_id_fields = ("owner",)
    # The status changes only through the review action (kameng.suppliers.onboarding), which records why.
    readonly_fields = ("status", "approved_at", "missing_items", "connector_config_current", "last_sync_at",
                       "last_sync_error")
    actions = ("sync_now",)

    @admin.display(description="当前对接配置（密钥已脱敏）")
    def connector_config_current(self, supplier: Supplier) -> str:
        return connector_config_masked(supplier)

    @admin.action(description="立即同步价格与库存（后台任务）")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Supplier]) -> None:
        from kameng.suppliers.tasks import sync_supplier

        supplier_ids = list(queryset.exclude(connector_kind="manual").values_list("pk", flat=True))
        for supplier_id in supplier_ids:
            sync_supplier.delay(supplier_id)
        self.message_user(request, f"已安排同步 {len(supplier_ids)} 个供货商（手工库存的供货商无需同步）",
                          messages.SUCCESS)


class AtLossFilter(admin.SimpleListFilter):
    title = "亏本"
    parameter_name = "at_loss"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "供货价高于售价（不路由）")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(offer_at_loss_q()) if self.value() == "yes" else queryset


@admin.register(SupplierOffer)
class SupplierOfferAdmin(ModelAdmin):
    list_display = ("supplier", "sku", "price", "selling_price", "at_loss", "stock_source", "upstream_stock",
                    "is_active", "is_loss_allowed", "synced_at")
    list_filter = ("is_active", "stock_source", AtLossFilter)
    list_select_related = ("supplier", "sku__product")
    autocomplete_fields = ("supplier", "sku")  # picked by name: 「商品 · 规格」, the supplier's name

    @admin.display(description="售价")
    def selling_price(self, offer: SupplierOffer) -> str:
        return str(offer.sku.price)

    @admin.display(description="亏本（不路由）", boolean=True)
    def at_loss(self, offer: SupplierOffer) -> bool:
        return offer_is_at_loss(offer)


@admin.register(SkuRoutingRule)
class SkuRoutingRuleAdmin(ModelAdmin):
    list_display = ("sku", "supplier", "kind", "note", "created_at")
    list_select_related = ("sku__product", "supplier")
    search_fields = ("sku__product__name", "sku__name", "supplier__name")
    autocomplete_fields = ("sku", "supplier")  # picked by name: 「商品 · 规格」, the supplier's name


class AttemptReviewForm(forms.Form):
    outcome = forms.TypedChoiceField(label="核查结论", widget=forms.RadioSelect, coerce=lambda value: value == "1",
                                     choices=[("1", "已到账（供货商确认充值成功）"),
                                              ("0", "充值失败（供货商确认未充值）")])
    operator_serial = forms.CharField(label="运营商流水号（已到账时必填）", max_length=100, required=False)
    reason = forms.CharField(label="核查说明（如与供货商核对的方式、对方答复）", max_length=200)
    confirm = forms.BooleanField(label="我已与供货商核对，结论无误")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("outcome") and not str(cleaned.get("operator_serial") or "").strip():
            self.add_error("operator_serial", "确认已到账时请填写运营商流水号")
        return cleaned


@admin.register(TopupAttempt)
class TopupAttemptAdmin(ModelAdmin):
    list_display = ("customer_order_no", "order", "supplier", "status", "cost", "submit_count", "query_count",
                    "needs_review", "submitted_at", "finished_at")
    # 需人工核查: a success reported after the attempt failed (double delivery risk), or still unknown after the
    # last query allowed (kameng.suppliers.topup); staff settle it with the 核查结论 action.
    list_filter = ("needs_review", "status", "supplier")
    date_hierarchy = "created_at"
    search_fields = ("customer_order_no", "supplier_order_id", "order__number")
    raw_id_fields = ("order", "offer", "supplier")
    readonly_fields = [f.name for f in TopupAttempt._meta.fields]
    actions_detail: tuple[str, ...] = ("settle_review",)
    actions_list: tuple[str, ...] = ("no_route_orders",)
    NO_ROUTE_PAGE_SIZE = 200

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # attempts are written by routing only (kameng.suppliers.topup)

    @action(description="无可用供货商的订单", url_path="no-route-orders", icon="report")
    def no_route_orders(self, request: HttpRequest) -> HttpResponse:
        """Paid direct top-up orders without any attempt (no offer was eligible), with why, newest first."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        orders = list(topup_orders_without_attempts()[:self.NO_ROUTE_PAGE_SIZE])
        reasons = no_route_reasons(order_ids=[order.pk for order in orders])
        rows = [(order, reasons.get(order.pk, "尚未路由（等待发货任务）"),
                 reverse("admin:orders_order_change", args=[order.pk])) for order in orders]
        return TemplateResponse(request, "admin/suppliers/topupattempt/no_route.html", {
            **self.admin_site.each_context(request), "title": "无可用供货商的直充订单", "opts": self.model._meta,
            "rows": rows, "page_size": self.NO_ROUTE_PAGE_SIZE,
        })

    def has_review_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return bool(request.user.has_perm(ATTEMPT_REVIEW_PERMISSION))

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> list[Any]:
        """Offer the review button only while the attempt is flagged."""
        if not TopupAttempt.objects.filter(pk=object_id, needs_review=True).exists():
            return []
        return super().get_actions_detail(request, object_id)

    @action(description="核查结论", url_path="settle-review", icon="fact_check", permissions=["review"])
    def settle_review(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Record what the supplier confirmed for a flagged attempt (kameng.suppliers.topup.attempt_review_settle)."""
        if not self.has_review_permission(request):
            raise PermissionDenied
        if not str(object_id).isdigit():
            raise Http404("直充提交不存在")
        attempt = get_object_or_404(TopupAttempt.objects.select_related("supplier", "order"), pk=object_id)
        change_url = reverse("admin:suppliers_topupattempt_change", args=[attempt.pk])
        if not attempt.needs_review:  # settled already (by someone else, or an old link): no form to submit
            self.message_user(request, f"直充提交 {attempt.customer_order_no} 无需核查或已处理", messages.WARNING)
            return HttpResponseRedirect(change_url)
        form = AttemptReviewForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                said = attempt_review_settle(attempt_id=attempt.pk, succeeded=form.cleaned_data["outcome"],
                                             operator_serial=form.cleaned_data["operator_serial"],
                                             reason=form.cleaned_data["reason"],
                                             staff_name=request.user.get_username())
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, f"直充提交 {attempt.customer_order_no}：{said}", messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        return TemplateResponse(request, "admin/suppliers/topupattempt/review.html", {
            **self.admin_site.each_context(request), "title": f"核查结论 · {attempt.customer_order_no}",
            "opts": self.model._meta, "subject": attempt.customer_order_no, "form_id": "attempt-review-form",
            "notes": ATTEMPT_REVIEW_NOTES, "attempt": attempt, "form": form, "change_url": change_url,
        })


class RestockWebhookAttemptInline(TabularInline):
    model = RestockWebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("number", "status_code", "error", "duration_ms", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RestockRequest)
class RestockRequestAdmin(ModelAdmin):
    list_display = ("pk", "supplier", "offer", "status", "stock_at_raise", "threshold", "webhook_status",
                    "webhook_attempt_count", "email_sent_at", "created_at", "acknowledged_at", "restocked_at")
    list_filter = ("status", "webhook_status")
    search_fields = ("supplier__name",)
    raw_id_fields = ("offer", "supplier")
    readonly_fields = [f.name for f in RestockRequest._meta.fields]
    inlines = (RestockWebhookAttemptInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(RatingWeights)
class RatingWeightsAdmin(ModelAdmin):
    """One row: the weights of the rating components (validated to sum to 1 when saved)."""

    list_display = ("__str__", *WEIGHT_FIELDS, "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not RatingWeights.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: RatingWeights | None = None) -> bool:
        return False


@admin.register(RatingSnapshot)
class RatingSnapshotAdmin(ModelAdmin):
    list_display = ("day", "supplier", "stars", "is_provisional", "orders_count", "success_rate",
                    "delivery_seconds", "after_sales_rate", "price_premium", "stock_stability")
    list_filter = ("is_provisional", "day")
    search_fields = ("supplier__name",)
    date_hierarchy = "day"
    readonly_fields = [f.name for f in RatingSnapshot._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
