"""The supplier console's restock requests (补货提醒, /supplier/restock/): the supplier's own requests, newest first,
with the buttons to acknowledge one and to mark it restocked, and where the notices go (webhook, e-mail). Another
supplier's request answers 404."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from kameng.core.errors import ApplicationError, NotFoundError
from kameng.suppliers.models import RestockRequest, RestockStatus
from kameng.suppliers.notify_settings import supplier_notify_settings, supplier_notify_settings_update
from kameng.suppliers.restock import restock_request_move
from kameng.web.errors import message_for, status_for
from kameng.web.views.supplier_console import (
    SUPPLIER_CONSOLE_NAV,
    SupplierRequest,
    console_render,
    supplier_required,
)

SUPPLIER_CONSOLE_NAV.append(("web:supplier_restock", gettext_lazy("补货提醒")))

PAGE_SIZE = 30


class NotifySettingsForm(forms.Form):
    webhook_url = forms.CharField(label=gettext_lazy("Webhook 地址"), required=False, max_length=300,
                                  help_text=gettext_lazy("留空则不发送 Webhook；须为 https:// 公网地址"))
    notify_email = forms.CharField(label=gettext_lazy("通知邮箱"), required=False, max_length=254,
                                   help_text=gettext_lazy("留空则发到登录账号的邮箱"))
    new_secret = forms.BooleanField(label=gettext_lazy("重新生成签名密钥"), required=False)


def _restock_page(request: SupplierRequest, *, settings_form: NotifySettingsForm | None = None,
                  new_secret: str = "", error_message: str = "", status: int = 200) -> HttpResponse:
    requests = (RestockRequest.objects.filter(supplier_id=request.supplier.pk)
                .select_related("offer__sku__product").order_by("-created_at", "-pk"))
    page = Paginator(requests, PAGE_SIZE).get_page(request.GET.get("page"))
    open_count = requests.filter(status__in=[RestockStatus.OPEN, RestockStatus.ACKNOWLEDGED]).count()
    current = supplier_notify_settings(supplier=request.supplier)
    if settings_form is None:
        settings_form = NotifySettingsForm(initial={"webhook_url": current.webhook_url,
                                                    "notify_email": current.notify_email})
    context: dict[str, Any] = {"page": page, "open_count": open_count, "settings_form": settings_form,
                               "has_secret": current.has_secret, "new_secret": new_secret,
                               "error_message": error_message}
    response = console_render(request, "web/supplier/restock.html", context, status=status)
    if new_secret:
        response["Cache-Control"] = "no-store"  # the secret is shown once, never kept by a cache
    return response


@require_GET
@supplier_required
def supplier_restock(request: SupplierRequest) -> HttpResponse:
    return _restock_page(request)


@require_POST
@supplier_required
def supplier_restock_settings(request: SupplierRequest) -> HttpResponse:
    form = NotifySettingsForm(request.POST)
    if not form.is_valid():
        return _restock_page(request, settings_form=form, status=400)
    try:
        secret = supplier_notify_settings_update(
            supplier_id=request.supplier.pk, webhook_url=form.cleaned_data["webhook_url"],
            notify_email=form.cleaned_data["notify_email"], new_secret=form.cleaned_data["new_secret"])
    except ApplicationError as error:
        return _restock_page(request, settings_form=form, error_message=message_for(error),
                             status=status_for(error))
    request.supplier.refresh_from_db()
    messages.success(request, _("通知设置已保存"))
    return _restock_page(request, new_secret=secret)


@require_POST
@supplier_required
def supplier_restock_move(request: SupplierRequest, request_id: int, to: str) -> HttpResponse:
    if to not in (RestockStatus.ACKNOWLEDGED, RestockStatus.RESTOCKED):
        raise Http404("补货提醒不存在")
    try:
        restock_request_move(supplier_id=request.supplier.pk, request_id=request_id, to=to)
    except NotFoundError as error:
        raise Http404("补货提醒不存在") from error
    except ApplicationError as error:
        messages.error(request, message_for(error))
        return redirect("web:supplier_restock")
    if to == RestockStatus.ACKNOWLEDGED:
        messages.success(request, _("已确认补货提醒"))
    else:
        messages.success(request, _("已标记为已补货"))
    return redirect("web:supplier_restock")
