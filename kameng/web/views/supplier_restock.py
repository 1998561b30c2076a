"""The supplier console's restock requests (补货提醒, /supplier/restock/): the supplier's own requests, newest first,
with the buttons to acknowledge one and to mark it restocked. Another supplier's request answers 404."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from kameng.core.errors import ApplicationError, NotFoundError
from kameng.suppliers.models import RestockRequest, RestockStatus
from kameng.suppliers.restock import restock_request_move
from kameng.web.errors import message_for
from kameng.web.views.supplier_console import (
    SUPPLIER_CONSOLE_NAV,
    SupplierRequest,
    console_render,
    supplier_required,
)

SUPPLIER_CONSOLE_NAV.append(("web:supplier_restock", gettext_lazy("补货提醒")))

PAGE_SIZE = 30


@require_GET
@supplier_required
def supplier_restock(request: SupplierRequest) -> HttpResponse:
    requests = (RestockRequest.objects.filter(supplier_id=request.supplier.pk)
                .select_related("offer__sku__product").order_by("-created_at", "-pk"))
    page = Paginator(requests, PAGE_SIZE).get_page(request.GET.get("page"))
    open_count = requests.filter(status__in=[RestockStatus.OPEN, RestockStatus.ACKNOWLEDGED]).count()
    return console_render(request, "web/supplier/restock.html", {"page": page, "open_count": open_count})


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
