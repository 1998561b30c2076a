"""The gateways' asynchronous notification endpoint: machine to machine, so no session, no CSRF token.

Epay notifies by GET query, Alipay by POST form, WeChat Pay by a JSON body signed in headers: the view hands all
of it, raw, to the payment service, and answers what the channel's protocol expects.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from kameng.core.http import client_address
from kameng.payments.services import payment_notification_process


@csrf_exempt
@require_http_methods(["GET", "POST"])
def payment_notify(request: HttpRequest, channel_code: str) -> HttpResponse:
    is_form = request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
    params = {**request.GET.dict(), **(request.POST.dict() if is_form else {})}
    answer = payment_notification_process(channel_code=channel_code, params=params, headers=dict(request.headers),
                                          body=request.body if not is_form else b"",
                                          remote_addr=client_address(request) or None)
    return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
