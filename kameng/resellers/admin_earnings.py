"""Staff pages for reseller money: earnings (read only, filtered by kind, state, level), the commission settings
(one row), commission withdrawals with their review (paid by bank transfer / rejected, each on a confirmation
page, once), and invitation relations (staff may set or change a user's inviter; never itself, never a cycle).
Imported by kameng/resellers/admin.py."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.admin import ModelAdmin
from unfold.decorators import action

from kameng.core.admin import ReadOnlyAdminMixin
from kameng.core.errors import ApplicationError
from kameng.core.masking import Revealed, mask_person_name
from kameng.resellers.commission_withdrawals import (
    commission_withdrawal_pay,
    commission_withdrawal_reject,
    mask_bank_account,
)
from kameng.resellers.earnings_models import RATE_FIELDS
from kameng.resellers.models import (
    CommissionSettings,
    Earning,
    Referral,
    ResellerWithdrawal,
    ResellerWithdrawalDestination,
    ResellerWithdrawalStatus,
)
from kameng.resellers.referrals import referral_set_by_staff, referral_would_cycle

REVIEW_PERMISSION = "resellers.change_resellerwithdrawal"

REVIEW_NOTES = ("已打款：请先通过银行转账向上述账户打款，再填写银行流水号确认；资金从「代理提现审核中」转出。",
                "驳回：金额退回代理的佣金余额，原因显示在代理后台。",
                "每笔申请只能审核一次。")


@admin.register(Earning)
class EarningAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("order", "kind", "level", "beneficiary", "amount", "reversed_amount", "state", "available_at",
                    "settled_at", "created_at")
    list_filter = ("kind", "state", "level")
    search_fields = ("order__number", "beneficiary__username")
    list_select_related = ("order", "beneficiary")
    date_hierarchy = "created_at"
    fields = ("order", "kind", "level", "beneficiary", "amount", "reversed_amount", "state", "available_at",
              "settled_at", "created_at")
    readonly_fields = fields


@admin.register(CommissionSettings)
class CommissionSettingsAdmin(ModelAdmin):
    """One row: the depth, the rate of each level and the confirmation period (validated when saved)."""

    list_display = ("__str__", "depth", *RATE_FIELDS[:3], "confirm_days", "updated_at")
    fields = ("depth", *RATE_FIELDS, "confirm_days")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not CommissionSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: CommissionSettings | None = None) -> bool:
        return False


class PayForm(forms.Form):
    transfer_reference = forms.CharField(label="银行转账流水号", max_length=100)
    confirm = forms.BooleanField(label="我已通过银行转账向上述账户打款，金额无误")


class RejectForm(forms.Form):
    reason = forms.CharField(label="驳回原因（代理可见）", max_length=200)


@admin.register(ResellerWithdrawal)
class ResellerWithdrawalAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("number", "reseller", "destination", "amount", "status", "bank_name", "masked_account",
                    "created_at", "reviewed_at")
    list_filter = ("status", "destination")
    search_fields = ("number", "reseller__user__username", "transfer_reference")
    list_select_related = ("reseller", "reseller__user")
    fields = ("number", "reseller", "destination", "amount", "status", "bank_name", "masked_account_name",
              "masked_account", "transfer_reference", "rejection_reason", "reviewed_by", "reviewed_at", "created_at")
    readonly_fields = fields
    actions_detail: tuple[str, ...] = ("pay", "reject")

    @admin.display(description="银行账号")
    def masked_account(self, withdrawal: ResellerWithdrawal) -> str:
        return mask_bank_account(str(withdrawal.account_number or "")) if withdrawal.account_number else "-"

    @admin.display(description="户名")
    def masked_account_name(self, withdrawal: ResellerWithdrawal) -> str:
        return mask_person_name(str(withdrawal.account_name)) if withdrawal.account_name else "-"

    def has_review_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        return bool(request.user.has_perm(REVIEW_PERMISSION))

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> list[Any]:
        """Offer the review buttons only while a bank withdrawal waits for review."""
        actions = super().get_actions_detail(request, object_id)
        if not ResellerWithdrawal.objects.filter(pk=object_id, status=ResellerWithdrawalStatus.REQUESTED,
                                                 destination=ResellerWithdrawalDestination.BANK).exists():
            return []
        return actions

    def _withdrawal(self, request: HttpRequest, object_id: str) -> ResellerWithdrawal:
        if not self.has_review_permission(request):
            raise PermissionDenied
        if not str(object_id).isdigit():
            raise Http404("提现申请不存在")
        return get_object_or_404(ResellerWithdrawal.objects.select_related("reseller", "reseller__user"),
                                 pk=object_id)

    def _page(self, request: HttpRequest, withdrawal: ResellerWithdrawal, form: forms.Form, title: str,
              *, show_account: bool) -> HttpResponse:
        number, name = str(withdrawal.account_number or ""), str(withdrawal.account_name or "")
        return TemplateResponse(request, "admin/resellers/resellerwithdrawal/review.html", {
            **self.admin_site.each_context(request), "title": title, "opts": self.model._meta,
            "subject": withdrawal.number, "form_id": "withdrawal-review-form", "notes": REVIEW_NOTES,
            "withdrawal": withdrawal, "form": form,
            "account": Revealed(number) if show_account else mask_bank_account(number),
            "account_name": Revealed(name) if show_account else mask_person_name(name),
            "change_url": reverse("admin:resellers_resellerwithdrawal_change", args=[withdrawal.pk]),
        })

    def _done(self, withdrawal: ResellerWithdrawal) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:resellers_resellerwithdrawal_change", args=[withdrawal.pk]))

    @action(description="已打款", url_path="pay", icon="payments", permissions=["review"])
    def pay(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Record the bank transfer that paid the withdrawal (the full account number and holder's name are shown
        here, to pay it)."""
        withdrawal = self._withdrawal(request, object_id)
        form = PayForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                commission_withdrawal_pay(withdrawal_id=withdrawal.pk, reviewer_id=request.user.pk,
                                          transfer_reference=form.cleaned_data["transfer_reference"])
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, f"提现 {withdrawal.number} 已标记为已打款", messages.SUCCESS)
                return self._done(withdrawal)
        return self._page(request, withdrawal, form, f"确认打款 · {withdrawal.number}", show_account=True)

    @action(description="驳回", url_path="reject", icon="block", permissions=["review"])
    def reject(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Reject the withdrawal with a reason the reseller reads; its money goes back to the commission balance."""
        withdrawal = self._withdrawal(request, object_id)
        form = RejectForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                commission_withdrawal_reject(withdrawal_id=withdrawal.pk, reviewer_id=request.user.pk,
                                             reason=form.cleaned_data["reason"])
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, f"提现 {withdrawal.number} 已驳回，¥{withdrawal.amount} 已退回佣金余额",
                                  messages.SUCCESS)
                return self._done(withdrawal)
        return self._page(request, withdrawal, form, f"驳回提现 · {withdrawal.number}", show_account=False)


class ReferralForm(forms.ModelForm):
    class Meta:
        model = Referral
        fields = ("user", "inviter")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # On the change page the user is read-only (not in the form): the row's own user.
        user = data.get("user") or (self.instance.user if self.instance.pk else None)
        inviter = data.get("inviter")
        if user is not None and inviter is not None:
            if user.pk == inviter.pk:
                raise forms.ValidationError("不能把用户设为自己的邀请人")
            if referral_would_cycle(user_id=user.pk, inviter_id=inviter.pk):
                raise forms.ValidationError("该邀请人在此用户的下级链上，设置后会形成循环")
        return data


@admin.register(Referral)
class ReferralAdmin(ModelAdmin):
    """Who invited whom. Adding or changing one here records it as set by staff (source 后台指定)."""

    form = ReferralForm
    list_display = ("user", "inviter", "source", "created_at")
    list_filter = ("source",)
    search_fields = ("user__username", "inviter__username")
    list_select_related = ("user", "inviter")
    raw_id_fields = ("user", "inviter")

    def get_readonly_fields(self, request: HttpRequest, obj: Referral | None = None) -> tuple[str, ...]:
        return ("user",) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Referral, form: forms.ModelForm, change: bool) -> None:
        try:
            saved = referral_set_by_staff(user_id=obj.user_id, inviter_id=obj.inviter_id)
        except ApplicationError as error:  # a cycle made by someone else since the form was checked
            self.message_user(request, error.message, messages.ERROR)
            return
        if saved is not None:
            obj.pk, obj.source, obj.created_at = saved.pk, saved.source, saved.created_at

