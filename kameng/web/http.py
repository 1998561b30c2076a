"""Request types for the views: the user is logged in (login_required ran) and django-htmx has annotated it."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from kameng.accounts.models import User


class HtmxRequest(HttpRequest):
    htmx: HtmxDetails


class BuyerRequest(HtmxRequest):
    """A request behind `login_required`."""

    user: User
