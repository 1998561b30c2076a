"""Suppliers' HTTP edge: the direct top-up callback each upstream is configured with (the path never changes)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from kameng.suppliers.callbacks import topup_callback_process


@csrf_exempt  # signed by the supplier, verified by its connector; no browser session is involved
@require_POST
def topup_callback(request: HttpRequest, supplier_id: int) -> HttpResponse:
    reply = topup_callback_process(supplier_id=supplier_id, body=request.body, headers=dict(request.headers))
    return HttpResponse(reply.body, status=reply.status, content_type="text/plain; charset=utf-8")
