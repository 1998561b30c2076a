"""The reseller console's callback log (回调记录, /reseller/notifications/): every notification of the reseller's
Open API orders with each attempt (time, HTTP status, response excerpt, error), filtered by state, searched by
order number or request number, and a button to send a given-up one again. Another reseller's delivery answers
404."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from kameng.core.errors import ApplicationError, NotFoundError
from kameng.resellers.models import NotifyState
from kameng.resellers.notify import notify_resend
from kameng.resellers.selectors_notify import notify_deliveries_of_reseller
from kameng.web.errors import message_for
from kameng.web.views.reseller_console import (
    RESELLER_CONSOLE_NAV,
    ResellerRequest,
    console_render,
    reseller_required,
)

RESELLER_CONSOLE_NAV.append(("web:reseller_notifications", gettext_lazy("回调记录")))

PAGE_SIZE = 20


@require_GET
@reseller_required(active=True)
def reseller_notifications(request: ResellerRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    search = request.GET.get("q", "")[:64]
    deliveries = notify_deliveries_of_reseller(reseller_id=request.reseller.pk, state=state, search=search)
    page = Paginator(deliveries, PAGE_SIZE).get_page(request.GET.get("page"))
    return console_render(request, "web/reseller/notifications.html", {
        "page": page, "state": state if state in NotifyState.values else "", "q": search,
        "states": NotifyState.choices, "gave_up": NotifyState.GAVE_UP})


@require_POST
@reseller_required(active=True)
def reseller_notification_resend(request: ResellerRequest, delivery_id: int) -> HttpResponse:
    try:
        notify_resend(delivery_id=delivery_id, reseller_id=request.reseller.pk)
    except NotFoundError as error:
        raise Http404("回调记录不存在") from error
    except ApplicationError as error:
        messages.error(request, message_for(error))
        return redirect("web:reseller_notifications")
    messages.success(request, _("已重新发送，结果见下方记录"))
    return redirect("web:reseller_notifications")
