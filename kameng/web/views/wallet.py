"""The wallet: balance, statement, top-up through a payment channel, and the top-up's status page."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from kameng.accounts.paypin import effective_password_free_limit
from kameng.core.device import risk_device_id
from kameng.core.errors import ApplicationError, NotFoundError
from kameng.core.http import client_address
from kameng.ledger.selectors import wallet_balance
from kameng.orders.selectors import order_of_buyer
from kameng.payments.aml_selectors import aml_review_of_payment, aml_reviews_of_user, wallet_held_balance
from kameng.payments.models import Payment, PaymentPurpose, PaymentStatus
from kameng.payments.selectors import channels_offered, payment_of_user
from kameng.payments.services import channel_shows_qr, wallet_topup_start
from kameng.payments.statement import wallet_statement_lines
from kameng.web.errors import handles_application_errors, rejected
from kameng.web.forms import TopupForm
from kameng.web.http import BuyerRequest
from kameng.web.views.paying import redirect_to_payment_return, simulator_link

STATEMENT_ROWS = 50


def _channel_choices() -> list[tuple[str, str]]:
    """Every usable gateway channel (the balance cannot top itself up); scan-to-pay ones say so."""
    return [(channel.code, f"{channel.name} · {_('扫码')}" if channel_shows_qr(channel) else channel.name)
            for channel in channels_offered()]


def _wallet_context(request: BuyerRequest, form: TopupForm | None = None) -> dict[str, object]:
    return {
        "page_url": reverse("web:wallet"),
        "balance": wallet_balance(user_id=request.user.pk),
        # Top-ups waiting for AML review (审核中): shown apart from the spendable balance (kameng.payments.aml).
        "held_balance": wallet_held_balance(user_id=request.user.pk),
        "aml_reviews": aml_reviews_of_user(user_id=request.user.pk, limit=10),
        "has_pin": bool(request.user.payment_pin),
        "password_free_limit": effective_password_free_limit(request.user.password_free_limit),
        "statement": wallet_statement_lines(user_id=request.user.pk, limit=STATEMENT_ROWS),
        "form": form or TopupForm(channel_choices=_channel_choices(),
                                  initial={"amount": request.GET.get("amount", "")[:12],
                                           "for_order": request.GET.get("order", "")[:40]}),
    }


@require_GET
@login_required
def wallet(request: BuyerRequest) -> HttpResponse:
    return render(request, "web/wallet.html", _wallet_context(request))


@require_http_methods(["GET", "POST"])
@login_required
def topup(request: BuyerRequest) -> HttpResponse:
    if request.method == "GET":  # a reload of the address a refused top-up form was shown at
        return redirect("web:wallet")
    form = TopupForm(request.POST, channel_choices=_channel_choices())
    context = _wallet_context(request, form)
    if not form.is_valid():
        return render(request, "web/wallet.html", context, status=400)
    try:
        started = wallet_topup_start(
            user_id=request.user.pk, channel_code=form.cleaned_data["channel"],
            amount_text=form.cleaned_data["amount"],
            client_ip=client_address(request), device=risk_device_id(request),
        )
    except ApplicationError as error:
        return rejected(request, "web/wallet.html", context, error)
    for_order = order_of_buyer(buyer_id=request.user.pk, number=form.cleaned_data["for_order"])
    if for_order is not None:
        request.session[_return_order_key(started.payment.number)] = for_order.number
    if started.start.redirect_url:
        return redirect(started.start.redirect_url)
    if started.start.html:  # a self-submitting form the gateway built
        return render(request, "web/gateway_form.html", {"html": started.start.html, "back_url": reverse("web:wallet")})
    return redirect("web:topup_status", number=started.payment.number)  # shows the QR code while pending


TOPUP_POLL_MINUTES = 30


def _return_order_key(payment_number: str) -> str:
    return f"topup-for-order:{payment_number}"


def _own_payment(request: BuyerRequest, number: str) -> Payment:
    payment = payment_of_user(user_id=request.user.pk, number=number)
    if payment is None:
        raise NotFoundError("充值记录不存在", code="payment_not_found")
    return payment


@require_http_methods(["GET", "POST"])
def topup_return(request: BuyerRequest) -> HttpResponse:
    """The return address top-ups were started with before payments had its own (kameng.payments.urls): a
    gateway may still send a buyer here, so it hands the query on to the one return handler."""
    return redirect_to_payment_return(request)


@require_GET
@login_required
@handles_application_errors
def topup_status(request: BuyerRequest, number: str) -> HttpResponse:
    """The top-up's status (with its QR code while pending, for scan-to-pay channels), polled by htmx every 2 s."""
    payment = _own_payment(request, number)
    if payment.purpose == PaymentPurpose.ORDER and payment.order is not None:  # an order's payment has its own page
        return redirect("web:order_payment", number=payment.order.number, payment_number=payment.number)
    template = "web/_topup_status.html" if request.htmx else "web/topup_status.html"
    is_pending = payment.status == PaymentStatus.PENDING
    # Past the polling window the page stops asking every 2 s and says what the buyer can do; a payment that
    # does arrive later is still credited (notification or reconciliation) and shows on the next visit.
    gave_up = is_pending and payment.created_at < timezone.now() - timedelta(minutes=TOPUP_POLL_MINUTES)
    return render(request, template, {"payment": payment, "is_pending": is_pending and not gave_up,
                                      "gave_up": gave_up,
                                      "aml_review": aml_review_of_payment(payment_id=payment.pk),
                                      "balance": wallet_balance(user_id=request.user.pk),
        "has_pin": bool(request.user.payment_pin),
        "password_free_limit": effective_password_free_limit(request.user.password_free_limit),
                                      "return_order": request.session.get(_return_order_key(payment.number)),
                                      "simulator_link": simulator_link(payment.qr_code)})
