"""The buyer's account hub (我的账户): who they are, the address their delivery e-mails go to, and links to the
other account pages (each listed only once its URL exists, so sections added by other apps appear by themselves)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kameng.core.errors import ApplicationError
from kameng.core.masking import mask_phone
from kameng.notices.services import (
    notice_email_change_request,
    notice_email_confirm,
    notice_email_pending,
    notice_email_remove,
)
from kameng.resellers.models import Reseller
from kameng.suppliers.models import Supplier
from kameng.web.errors import handles_application_errors, message_for, status_for
from kameng.web.forms import NoticeEmailForm
from kameng.web.http import BuyerRequest

# The account sections, in the order shown: (URL names to try, label). A section whose page is not installed has
# no URL and is left out.
ACCOUNT_SECTIONS: tuple[tuple[tuple[str, ...], Promise], ...] = (
    (("web:order_list",), gettext_lazy("我的订单")),
    (("web:wallet",), gettext_lazy("钱包")),
    (("web:account_realname", "web:realname", "web:real_name"), gettext_lazy("实名认证")),
    (("web:account_membership", "web:membership"), gettext_lazy("会员等级")),
    (("web:account_points", "web:points"), gettext_lazy("积分")),
    (("web:account_security", "web:security"), gettext_lazy("支付设置")),  # the page's own title
)


def account_sections() -> list[tuple[str, str]]:
    """(address, label) of each account section whose page exists."""
    found = []
    for names, label in ACCOUNT_SECTIONS:
        for name in names:
            try:
                found.append((reverse(name), str(label)))
                break
            except NoReverseMatch:
                continue
    return found


def _account_page(request: BuyerRequest, form: NoticeEmailForm, *, status: int = 200) -> HttpResponse:
    user = request.user
    # The way into the supplier console (供货商后台), or to applying for one.
    is_supplier = Supplier.objects.filter(owner_id=user.pk).exists()
    supplier_section = ((reverse("web:supplier_home"), _("供货商后台")) if is_supplier
                        else (reverse("web:supplier_apply"), _("申请成为供货商")))
    # The way into the reseller console (代理后台), or to applying for one.
    reseller_section = ((reverse("web:reseller_home"), _("代理后台"))
                        if Reseller.objects.filter(user_id=user.pk).exists()
                        else (reverse("web:reseller_apply"), _("申请成为代理")))
    return render(request, "web/account.html", {
        "form": form, "sections": [*account_sections(), supplier_section, reseller_section],
        "page_url": reverse("web:account"),
        "masked_phone": mask_phone(str(user.phone)) if user.phone else "",
    }, status=status)


@require_GET
@login_required
def account(request: BuyerRequest) -> HttpResponse:
    return _account_page(request, NoticeEmailForm())


@require_POST
@login_required
def account_email(request: BuyerRequest) -> HttpResponse:
    """Ask for a new notification address: a confirmation link goes to it; nothing changes until it is opened."""
    form = NoticeEmailForm(request.POST)
    if not form.is_valid():
        return _account_page(request, form, status=400)
    try:
        email = notice_email_change_request(user_id=request.user.pk, email=form.cleaned_data["email"],
                                            language=get_language())
    except ApplicationError as error:
        form.add_error("email", message_for(error))
        return _account_page(request, form, status=status_for(error))
    messages.info(request, _("确认邮件已发送到 %(email)s，请打开邮件中的链接完成设置。") % {"email": email})
    return redirect("web:account")


@require_POST
@login_required
def account_email_remove(request: BuyerRequest) -> HttpResponse:
    notice_email_remove(user_id=request.user.pk)
    messages.success(request, _("已删除通知邮箱，之后不会再给您发邮件。"))
    return redirect("web:account")


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
@handles_application_errors
def account_email_confirm(request: BuyerRequest, token: str) -> HttpResponse:
    """GET asks (mail scanners open links: a GET changes nothing); the button there posts to confirm."""
    if request.method == "GET":
        email = notice_email_pending(user_id=request.user.pk, token=token)
        return render(request, "web/account_email_confirm.html", {"email": email, "token": token})
    email = notice_email_confirm(user_id=request.user.pk, token=token)
    messages.success(request, _("通知邮箱已设为 %(email)s") % {"email": email})
    return redirect("web:account")
