"""The supplier console's frame (供货商后台, under /supplier/): who may enter, the navigation, the overview page.

Each console page is a view decorated with `supplier_required` (a logged-in user who owns a supplier; the request
then carries it as `request.supplier`, and every query of the page is scoped to it) and rendered with
`console_render`, which adds the navigation. A page of another supplier's objects answers 404, never 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from kameng.suppliers.models import Supplier
from kameng.suppliers.onboarding import onboarding_overview
from kameng.web.http import BuyerRequest


class SupplierRequest(BuyerRequest):
    supplier: Supplier


# (url name, label) of each console page, in menu order; each page's module adds its own entry here.
SUPPLIER_CONSOLE_NAV: list[tuple[str, Promise]] = [
    ("web:supplier_home", _("概览")),
]

View = Callable[..., HttpResponse]


def supplier_required(view: View) -> View:
    """Only the owner of a supplier gets in (any status: onboarding pages need it before approval); 404 for
    anyone else, so the console's URLs do not tell a buyer they exist."""

    @wraps(view)
    @login_required
    def wrapped(request: SupplierRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        supplier = Supplier.objects.filter(owner_id=request.user.pk).first()
        if supplier is None:
            raise Http404("不是供货商账号")
        request.supplier = supplier
        return view(request, *args, **kwargs)

    return wrapped


def console_render(request: SupplierRequest, template: str, context: dict[str, Any] | None = None,
                   *, status: int = 200) -> HttpResponse:
    page = {"supplier": request.supplier, "console_nav": SUPPLIER_CONSOLE_NAV,
            "console_current": request.resolver_match.view_name if request.resolver_match else ""}
    return render(request, template, {**page, **(context or {})}, status=status)


@require_GET
@supplier_required
def supplier_home(request: SupplierRequest) -> HttpResponse:
    return console_render(request, "web/supplier/home.html",
                          {"overview": onboarding_overview(supplier=request.supplier)})
