"""Staff pages for the AML review (反洗钱) of wallet top-ups: the queue of held top-ups with each buyer's dossier
(identity masked, history, linked addresses and devices), approve / reject on a confirmation page, a new refund
when the gateway refused the last one, and the staff-editable policy. Imported by kameng/payments/admin.py."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import SafeString
from unfold.admin import ModelAdmin
from unfold.decorators import action

from kameng.accounts.staff_reauth import staff_reauth_response
from kameng.audit.services import audit_record
from kameng.core.admin import AdminThemeFormMixin, ReadOnlyAdminMixin
from kameng.core.errors import ApplicationError
from kameng.core.money import money
from kameng.payments.aml import aml_policy_defaults, aml_review_approve, aml_review_refund_again, aml_review_reject
from kameng.payments.aml_selectors import aml_review_dossier
from kameng.payments.models import AmlPolicy, AmlReview, AmlReviewStatus, RefundStatus

REVIEW_PERMISSION = "payments.change_amlreview"

REVIEW_NOTES = ("通过：资金从「待审核充值」转入买家钱包余额，可正常消费。",
                "驳回：资金按原支付渠道退回买家，驳回原因买家可见；通道拒绝退款时资金退回「待审核充值」，可重新发起退款。",
                "每笔审核只能处理一次；审核前请核对实名信息、历史记录与关联设备 / IP。")


class ApproveForm(AdminThemeFormMixin, forms.Form):
    confirm = forms.BooleanField(label="我已核对买家身份与资金来源，同意这笔充值入账")


class RejectForm(AdminThemeFormMixin, forms.Form):
    reason = forms.CharField(label="驳回原因（买家可见）", max_length=150)
    confirm = forms.BooleanField(label="确认驳回，并将资金原路退回")


class RefundAgainForm(AdminThemeFormMixin, forms.Form):
    confirm = forms.BooleanField(label="上一笔原路退款已失败，重新发起原路退款")


@admin.register(AmlReview)
class AmlReviewAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("number", "user", "amount", "status", "reason", "reason_detail", "created_at", "reviewed_at")
    list_filter = ("status", "reason", "created_at")
    search_fields = ("=number", "=payment__number", "user__username")
    list_select_related = ("user", "payment")
    date_hierarchy = "created_at"
    fields = ("number", "user", "payment", "amount", "status", "reason", "reason_detail", "rejection_reason",
              "refund", "reviewed_by", "reviewed_at", "created_at", "identity_purged_at", "dossier")
    readonly_fields = fields
    actions_detail: tuple[str, ...] = ("approve", "reject", "refund_again")

    @admin.display(description="审核资料")
    def dossier(self, review: AmlReview) -> SafeString:
        return SafeString(render_to_string("admin/payments/amlreview/dossier.html",
                                           {"review": review, "dossier": aml_review_dossier(review=review)}))

    def has_review_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return bool(request.user.has_perm(REVIEW_PERMISSION))

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> list[Any]:
        """Approve / reject while held; a new refund once the last one failed; nothing otherwise."""
        actions = super().get_actions_detail(request, object_id)
        review = AmlReview.objects.filter(pk=object_id).select_related("refund").first()
        if review is None:
            return []
        if review.status == AmlReviewStatus.HELD:
            wanted = {"approve", "reject"}
        elif review.refund is not None and review.refund.status == RefundStatus.FAILED:
            wanted = {"refund_again"}
        else:
            return []
        names = {f"payments_amlreview_{name}" for name in wanted}
        return [item for item in actions if item.action_name in names]

    def _review(self, request: HttpRequest, object_id: str) -> AmlReview:
        if not self.has_review_permission(request):
            raise PermissionDenied
        if not str(object_id).isdigit():
            raise Http404("审核单不存在")
        return get_object_or_404(AmlReview.objects.select_related("user", "payment__channel"), pk=object_id)

    def _change_url(self, review: AmlReview) -> str:
        return reverse("admin:payments_amlreview_change", args=[review.pk])

    @staticmethod
    def _reauth_for_refund(request: HttpRequest, review: AmlReview) -> HttpResponse | None:
        """Rejecting refunds the top-up through its channel: above the refund limit that asks for the 2FA code
        again, as an order refund does (the form's fields are carried through the code page)."""
        if review.amount > money(settings.KAMENG_STAFF_REAUTH_REFUND_OVER):
            return staff_reauth_response(request)
        return None

    def _page(self, request: HttpRequest, review: AmlReview, form: forms.Form, title: str) -> HttpResponse:
        return TemplateResponse(request, "admin/payments/amlreview/review.html", {
            **self.admin_site.each_context(request), "title": title, "opts": self.model._meta,
            "subject": review.number, "form_id": "aml-review-form", "notes": REVIEW_NOTES, "review": review,
            "dossier": aml_review_dossier(review=review), "form": form, "change_url": self._change_url(review),
        })

    @action(description="通过", url_path="approve", icon="check", permissions=["review"])
    def approve(self, request: HttpRequest, object_id: str) -> HttpResponse:
        review = self._review(request, object_id)
        form = ApproveForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                aml_review_approve(review_id=review.pk, staff_id=request.user.pk)
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                audit_record(action="aml_review.approve", request=request, instance=review,
                             before={"status": review.status},
                             after={"status": AmlReviewStatus.APPROVED, "amount": review.amount})
                self.message_user(request, f"审核单 {review.number} 已通过，¥{review.amount} 已转入买家钱包",
                                  messages.SUCCESS)
                return HttpResponseRedirect(self._change_url(review))
        return self._page(request, review, form, f"通过充值 · {review.number}")

    @action(description="驳回并原路退款", url_path="reject", icon="block", permissions=["review"])
    def reject(self, request: HttpRequest, object_id: str) -> HttpResponse:
        review = self._review(request, object_id)
        form = RejectForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            challenge = self._reauth_for_refund(request, review)
            if challenge is not None:
                return challenge
            before = review.status
            try:
                review = aml_review_reject(review_id=review.pk, staff_id=request.user.pk,
                                           reason=form.cleaned_data["reason"])
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                refund = review.refund
                audit_record(action="aml_review.reject", request=request, instance=review, before={"status": before},
                             after={"status": review.status, "amount": review.amount,
                                    "reason": review.rejection_reason,
                                    "refund": refund.number if refund is not None else ""})
                state = refund.get_status_display() if refund is not None else ""
                self.message_user(request, f"审核单 {review.number} 已驳回，原路退款 {state}", messages.SUCCESS)
                return HttpResponseRedirect(self._change_url(review))
        return self._page(request, review, form, f"驳回充值 · {review.number}")

    @action(description="重新原路退款", url_path="refund-again", icon="replay", permissions=["review"])
    def refund_again(self, request: HttpRequest, object_id: str) -> HttpResponse:
        review = self._review(request, object_id)
        form = RefundAgainForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            challenge = self._reauth_for_refund(request, review)
            if challenge is not None:
                return challenge
            try:
                review = aml_review_refund_again(review_id=review.pk, staff_id=request.user.pk)
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                audit_record(action="aml_review.refund_again", request=request, instance=review,
                             after={"amount": review.amount,
                                    "refund": review.refund.number if review.refund is not None else ""})
                self.message_user(request, f"审核单 {review.number} 已重新发起原路退款", messages.SUCCESS)
                return HttpResponseRedirect(self._change_url(review))
        return self._page(request, review, form, f"重新原路退款 · {review.number}")


@admin.register(AmlPolicy)
class AmlPolicyAdmin(ModelAdmin):
    """One row: the thresholds in force (without it, the KAMENG_AML_* settings). A change applies to the next
    top-up credited."""

    list_display = ("threshold", "structuring_ratio", "structuring_count", "structuring_daily_sum",
                    "structuring_window_hours", "retention_days", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not AmlPolicy.objects.exists()

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        defaults = aml_policy_defaults()
        return {"threshold": defaults.threshold, "structuring_ratio": defaults.structuring_ratio,
                "structuring_count": defaults.structuring_count,
                "structuring_daily_sum": defaults.structuring_daily_sum,
                "structuring_window_hours": defaults.structuring_window_hours,
                "retention_days": defaults.retention_days}
