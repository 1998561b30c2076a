"""Payments' HTTP edges: the gateways' asynchronous notification, and the buyer's return from a gateway.

The notification is machine to machine (no session, no CSRF token): epay notifies by GET query, Alipay by POST
form, WeChat Pay by a JSON body signed in headers. Its size is judged from the headers before anything is read
(kameng.payments.intake), then all of it goes, raw, to the payment service, and the answer is what the channel's
protocol expects. The return is the buyer's browser coming back: checked and confirmed by kameng.payments.returns,
then sent on to the storefront page of what was paid (the order, or the top-up's status).
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from kameng.core.http import client_address
from kameng.payments.intake import notification_is_too_large
from kameng.payments.returns import payment_return_process
from kameng.payments.services import payment_notification_process

PAYLOAD_TOO_LARGE = 413


@csrf_exempt
@require_http_methods(["GET", "POST"])
def payment_notify(request: HttpRequest, channel_code: str) -> HttpResponse:
    if notification_is_too_large(content_length=str(request.META.get("CONTENT_LENGTH", "")),
                                 query_string=str(request.META.get("QUERY_STRING", ""))):
        return HttpResponse("payload too large", status=PAYLOAD_TOO_LARGE, content_type="text/plain")
    is_form = request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
    params = {**request.GET.dict(), **(request.POST.dict() if is_form else {})}
    answer = payment_notification_process(channel_code=channel_code, params=params, headers=dict(request.headers),
                                          body=request.body if not is_form else b"",
                                          remote_addr=client_address(request) or None)
    return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)


@csrf_exempt  # UnionPay sends the buyer back with a form POSTed from its own page; nothing here changes state
@require_http_methods(["GET", "POST"])
def payment_return(request: HttpRequest) -> HttpResponse:
    """Where every gateway sends the buyer back (orders and top-ups): confirm what it says, then show the page
    of what was paid, which polls while the payment is still being confirmed. The query names the payment
    (`out_trade_no`); a gateway's POSTed fields (UnionPay's frontUrl form) come with it.

    A form POSTed from the gateway's site arrives without the session cookie (SameSite=Lax), so an anonymous POST
    is sent on as a GET of the same address, which carries the cookie: the buyer lands on their order instead of
    the login page (the order page polls, and the notification or reconciliation confirms the payment)."""
    if not request.user.is_authenticated:
        if request.method == "POST":
            again = HttpResponseRedirect(request.get_full_path())
            again.status_code = 303  # See Other: the browser follows with a GET
            return again
        return redirect_to_login(request.get_full_path())
    assert request.user.pk is not None
    payment = payment_return_process(user_id=request.user.pk, params={**request.POST.dict(), **request.GET.dict()})
    if payment is None:
        raise Http404("支付单不存在")
    if payment.order is not None:
        return redirect("web:order_detail", number=payment.order.number)
    return redirect("web:topup_status", number=payment.number)
