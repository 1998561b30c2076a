"""Staff's after-sales queue (售后申请): pending requests first (the oldest on top), each with its order, the buyer
(masked), reason, note and the order's card keys (masked, with their state); 同意并退款 (the one refund service,
with the step-up code above KAMENG_STAFF_REAUTH_REFUND_OVER as on the order page) and 拒绝 (a reason the buyer
reads). Every decision is recorded in the audit log."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, F, Q, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import SafeString
from unfold.admin import ModelAdmin
from unfold.decorators import action
from unfold.widgets import UnfoldAdminRadioSelectWidget, UnfoldAdminTextInputWidget

from kameng.accounts.staff_reauth import staff_reauth_response
from kameng.after_sales.models import STAFF_REPLY_MAX_LENGTH, AfterSalesRequest, AfterSalesStatus
from kameng.after_sales.selectors import order_card_keys_state
from kameng.after_sales.services import after_sales_request_approve, after_sales_request_reject
from kameng.audit.services import audit_record
from kameng.core.admin import ReadOnlyAdminMixin
from kameng.core.errors import ApplicationError
from kameng.core.masking import mask_secret
from kameng.core.money import money
from kameng.orders.refunds import order_refundable_amount
from kameng.payments.models import Payment, RefundDestination
from kameng.payments.selectors import payment_original_for_order

DECIDE_PERMISSION = "after_sales.change_aftersalesrequest"
REFUND_PERMISSION = "payments.add_refund"

NOTES = ("同意并退款：订单剩余可退金额通过订单退款流程退回（钱包余额立即到账；原路退回以通道结果为准），"
         "同一申请只会退款一次。",
         "拒绝：须填写原因，买家在订单页与「我的售后」中可见；订单恢复为「已发货」。",
         "处理前请核对卡密状态与买家说明；风控标记「复核」的申请请先查看风控决策。")


class ApproveForm(forms.Form):
    destination = forms.ChoiceField(label="退款去向", widget=UnfoldAdminRadioSelectWidget)
    confirm = forms.BooleanField(label="我已核对售后原因与卡密状态，同意退款")

    def __init__(self, *args: Any, payment: Payment | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(RefundDestination.WALLET.value, "钱包余额（立即到账）")]
        if payment is not None:
            choices.append((RefundDestination.ORIGINAL.value,
                            f"原路退回（{payment.channel.name}，支付单 {payment.number}）"))
        destination = self.fields["destination"]
        assert isinstance(destination, forms.ChoiceField)
        destination.choices = choices
        destination.initial = RefundDestination.WALLET.value


class RejectForm(forms.Form):
    reply = forms.CharField(label="拒绝原因（买家可见）", max_length=STAFF_REPLY_MAX_LENGTH,
                            widget=UnfoldAdminTextInputWidget)


@admin.register(AfterSalesRequest)
class AfterSalesRequestAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("number", "order", "buyer_masked", "reason", "note_short", "amount", "status", "risk_flag",
                    "created_at", "decided_at")
    list_filter = ("status", "reason", "created_at")
    search_fields = ("=number", "=order__number")
    list_select_related = ("order", "buyer")
    fields = ("number", "order", "buyer_masked", "reason", "note", "amount", "status", "staff_reply", "refund",
              "risk_decision", "decided_by", "created_at", "decided_at", "order_facts")
    readonly_fields = fields
    actions_detail: tuple[str, ...] = ("approve", "reject")

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        """The queue: pending requests first (the oldest on top, as they were asked), then the decided ones, newest
        first. Expressions rather than `ordering`: the admin's checks only know plain fields."""
        is_pending = Q(status=AfterSalesStatus.PENDING)
        return [Case(When(is_pending, then=Value(0)), default=Value(1)).asc(),
                Case(When(is_pending, then=F("id")), default=-F("id")).asc()]

    @admin.display(description="买家")
    def buyer_masked(self, request_row: AfterSalesRequest) -> str:
        return mask_secret(request_row.buyer.get_username())

    @admin.display(description="补充说明")
    def note_short(self, request_row: AfterSalesRequest) -> str:
        return request_row.note if len(request_row.note) <= 40 else request_row.note[:40] + "…"

    @admin.display(description="风控", boolean=False)
    def risk_flag(self, request_row: AfterSalesRequest) -> str:
        return "复核" if request_row.risk_decision_id else ""

    @admin.display(description="订单与卡密")
    def order_facts(self, request_row: AfterSalesRequest) -> SafeString:
        return SafeString(render_to_string("admin/after_sales/aftersalesrequest/facts.html", {
            "row": request_row, "order": request_row.order, "keys": order_card_keys_state(
                order_id=request_row.order_id), "refundable": order_refundable_amount(request_row.order)}))

    def has_decide_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return bool(request.user.has_perm(DECIDE_PERMISSION))

    def has_approve_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return bool(request.user.has_perm(DECIDE_PERMISSION) and request.user.has_perm(REFUND_PERMISSION))

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> list[Any]:
        """同意 / 拒绝 while the request is pending; nothing once it was decided."""
        actions = super().get_actions_detail(request, object_id)
        if not AfterSalesRequest.objects.filter(pk=object_id, status=AfterSalesStatus.PENDING).exists():
            return []
        return actions

    def _request_row(self, request: HttpRequest, object_id: str, *, may: bool) -> AfterSalesRequest:
        if not may:
            raise PermissionDenied
        if not str(object_id).isdigit():
            raise Http404("售后申请不存在")
        return get_object_or_404(AfterSalesRequest.objects.select_related("order", "buyer"), pk=object_id)

    def _change_url(self, row: AfterSalesRequest) -> str:
        return reverse("admin:after_sales_aftersalesrequest_change", args=[row.pk])

    def _page(self, request: HttpRequest, row: AfterSalesRequest, form: forms.Form, title: str) -> HttpResponse:
        return TemplateResponse(request, "admin/after_sales/aftersalesrequest/decide.html", {
            **self.admin_site.each_context(request), "title": title, "opts": self.model._meta,
            "subject": row.number, "form_id": "after-sales-form", "notes": NOTES, "row": row,
            "buyer_masked": self.buyer_masked(row), "refundable": order_refundable_amount(row.order),
            "keys": order_card_keys_state(order_id=row.order_id), "form": form,
            "change_url": self._change_url(row)})

    @action(description="同意并退款", url_path="approve", icon="currency_exchange", permissions=["approve"])
    def approve(self, request: HttpRequest, object_id: str) -> HttpResponse:
        row = self._request_row(request, object_id, may=self.has_approve_permission(request))
        form = ApproveForm(request.POST or None, payment=payment_original_for_order(order_id=row.order_id))
        if request.method == "POST" and form.is_valid():
            if order_refundable_amount(row.order) > money(settings.KAMENG_STAFF_REAUTH_REFUND_OVER):
                challenge = staff_reauth_response(request)  # as a large refund from the order page
                if challenge is not None:
                    return challenge
            try:
                row = after_sales_request_approve(request_id=row.pk, staff_id=request.user.pk,
                                                  destination=form.cleaned_data["destination"])
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                refund = row.refund
                assert refund is not None
                audit_record(action="after_sales.approve", request=request, instance=row,
                             before={"status": AfterSalesStatus.PENDING.value},
                             after={"status": row.status, "order": row.order.number, "refund": refund.number,
                                    "amount": refund.amount, "destination": refund.destination,
                                    "refund_status": refund.status})
                self.message_user(request, f"售后申请 {row.number} 已同意：退款 ¥{refund.amount}（退款单 "
                                           f"{refund.number}，{refund.get_status_display()}）", messages.SUCCESS)
                return HttpResponseRedirect(self._change_url(row))
        return self._page(request, row, form, f"同意并退款 · {row.number}")

    @action(description="拒绝", url_path="reject", icon="block", permissions=["decide"])
    def reject(self, request: HttpRequest, object_id: str) -> HttpResponse:
        row = self._request_row(request, object_id, may=self.has_decide_permission(request))
        form = RejectForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                row = after_sales_request_reject(request_id=row.pk, staff_id=request.user.pk,
                                                 reply=form.cleaned_data["reply"])
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                audit_record(action="after_sales.reject", request=request, instance=row,
                             before={"status": AfterSalesStatus.PENDING.value},
                             after={"status": row.status, "order": row.order.number, "reply": row.staff_reply})
                self.message_user(request, f"售后申请 {row.number} 已拒绝", messages.SUCCESS)
                return HttpResponseRedirect(self._change_url(row))
        return self._page(request, row, form, f"拒绝售后 · {row.number}")
