"""The gateway's asynchronous notification endpoint: machine to machine, so no session, no CSRF token."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from kameng.payments.services import payment_notification_process


@csrf_exempt
@require_http_methods(["GET", "POST"])
def payment_notify(request: HttpRequest, channel_code: str) -> HttpResponse:
    params = {**request.GET.dict(), **request.POST.dict()}
    answer = payment_notification_process(channel_code=channel_code, params=params,
                                          remote_addr=request.META.get("REMOTE_ADDR") or None)
    return HttpResponse(answer.body, status=answer.status, content_type="text/plain")
