"""Becoming a reseller (申请成为代理): the application page at /reseller/apply/ and what it shows afterwards."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from kameng.core.errors import ApplicationError
from kameng.resellers.models import Reseller, ResellerStatus
from kameng.resellers.services import CONTACT_MAX, NOTE_MAX, reseller_apply
from kameng.web.errors import message_for
from kameng.web.http import BuyerRequest


class ResellerApplyForm(forms.Form):
    contact = forms.CharField(label=gettext_lazy("联系方式"), max_length=CONTACT_MAX,
                              help_text=gettext_lazy("手机、QQ 或微信，方便审核时联系您"))
    note = forms.CharField(label=gettext_lazy("申请说明"), max_length=NOTE_MAX, required=False,
                           widget=forms.Textarea(attrs={"rows": 4}),
                           help_text=gettext_lazy("您的销售渠道、预计月采购量等"))


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def reseller_apply_view(request: BuyerRequest) -> HttpResponse:
    reseller = Reseller.objects.select_related("tier").filter(user_id=request.user.pk).first()
    may_apply = reseller is None or reseller.status == ResellerStatus.REJECTED
    # after a rejection the form starts from the earlier application ("修改资料后重新申请")
    initial = {"contact": reseller.contact, "note": reseller.application_note} if reseller is not None else {}
    form = ResellerApplyForm(request.POST or None, initial=initial) if may_apply else None
    if request.method == "POST":
        if form is None:
            messages.error(request, _("您已提交过代理申请，无需重复申请"))
            return redirect("web:reseller_apply")
        if form.is_valid():
            try:
                reseller_apply(user_id=request.user.pk, contact=form.cleaned_data["contact"],
                               note=form.cleaned_data["note"])
            except ApplicationError as error:
                form.add_error(None, message_for(error))
            else:
                messages.success(request, _("申请已提交，请等待平台审核"))
                return redirect("web:reseller_apply")
    status = 400 if request.method == "POST" else 200
    return render(request, "web/reseller/apply.html", {"form": form, "reseller": reseller}, status=status)
