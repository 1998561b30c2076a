"""Step-up (再次验证) for sensitive staff actions: a code from the authenticator (or a recovery code) entered within
the last KAMENG_STAFF_REAUTH_SECONDS, or the action waits for one.

    @staff_reauth_required          # on a view function or a ModelAdmin method (request is found among the args)
    def pay(self, request, object_id): ...

    challenge = staff_reauth_response(request)   # inside a view, when only some requests need it (a large refund)
    if challenge is not None:
        return challenge

Without a fresh code the view does not run: the code page is answered instead (403). A POST is carried through it —
its fields go back as hidden inputs with the code, to the same URL — so the form staff filled in is not lost and
the action runs once the code is right. A GET comes back to the same URL after the code (file uploads are not
carried: an upload form asks for the code when it is opened).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from kameng.accounts.staff_otp import staff_code_check, staff_reauth_is_fresh, staff_reauth_mark
from kameng.audit.services import audit_record

CODE_FIELD = "_staff_reauth_code"
RETURN_FIELD = "_staff_reauth_return"  # the code page of a GET: after the code, come back to the URL
NOT_CARRIED = frozenset({"csrfmiddlewaretoken", CODE_FIELD, RETURN_FIELD})

View = TypeVar("View", bound=Callable[..., Any])


def staff_reauth_response(request: HttpRequest) -> HttpResponse | None:
    """None if the session entered a code recently (or enters a right one with this request); else the code page."""
    if staff_reauth_is_fresh(request):
        return None
    error = ""
    if request.method == "POST" and CODE_FIELD in request.POST:
        check = staff_code_check(request=request, user=request.user, code=request.POST.get(CODE_FIELD, ""))
        if check.device is not None:
            staff_reauth_mark(request)
            audit_record(action="staff_otp.reauth", request=request, object_type="", object_repr=request.path)
            if RETURN_FIELD in request.POST:
                return HttpResponseRedirect(request.get_full_path())
            return None
        error = check.error
    carried = ([(name, value) for name, values in request.POST.lists() if name not in NOT_CARRIED
                for value in values] if request.method == "POST" else [])
    return TemplateResponse(request, "admin/staff_otp/reauth.html", {
        **admin.site.each_context(request), "title": "敏感操作：请再次验证", "error": error,
        "carried": carried, "return_after": request.method != "POST", "action": request.get_full_path(),
        "code_field": CODE_FIELD, "return_field": RETURN_FIELD, "cancel_url": _cancel_url(request),
    }, status=403)


def _cancel_url(request: HttpRequest) -> str:
    """Where 取消 goes without a code (the phone is not at hand): the page staff came from, else the admin index."""
    referer = request.headers.get("referer", "")
    if referer and url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()},
                                                   require_https=request.is_secure()):
        return referer
    return reverse("admin:index")


def staff_reauth_required(view: View) -> View:
    """Guard a staff view (a function or a method: the HttpRequest is found among its arguments) with the step-up."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        request = next(arg for arg in args if isinstance(arg, HttpRequest))
        challenge = staff_reauth_response(request)
        if challenge is not None:
            return challenge
        return view(*args, **kwargs)

    return cast(View, guarded)
