"""The supplier's signed price/stock push (POST /suppliers/push/<supplier_id>/): machine to machine, no session
and no CSRF token; the body is verified and applied by kameng.suppliers.sync.supplier_push_receive, and every
refusal is a JSON `{code, message}` with its HTTP status (401 forged — or a supplier id unknown or without pushes,
the same answer —, 400 stale or malformed, 409 replayed, 413 too large)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from kameng.core.errors import ApplicationError
from kameng.suppliers.sync import PUSH_MAX_BYTES, supplier_push_receive

PAYLOAD_TOO_LARGE = 413


@csrf_exempt
@require_POST
def supplier_push(request: HttpRequest, supplier_id: int) -> JsonResponse:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > PUSH_MAX_BYTES:
        return JsonResponse({"code": "push_too_large", "message": "推送内容过大（上限 1 MB）"},
                            status=PAYLOAD_TOO_LARGE)
    try:
        result = supplier_push_receive(supplier_id=supplier_id, body=request.body,
                                       timestamp=request.headers.get("X-Kameng-Timestamp", ""),
                                       signature=request.headers.get("X-Kameng-Signature", ""))
    except ApplicationError as error:
        return JsonResponse(error.as_dict(), status=error.status_code,
                            json_dumps_params={"ensure_ascii": False})
    return JsonResponse({"code": "ok", "updated": result.updated, "unchanged": result.unchanged,
                         "unknown_products": result.unknown_products})
