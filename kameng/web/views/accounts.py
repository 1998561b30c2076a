"""Register, log in (username or phone) and log out."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from kameng.accounts.services import user_register
from kameng.core.errors import ApplicationError
from kameng.core.http import client_address
from kameng.web.errors import message_for, rejected, status_for
from kameng.web.forms import LoginForm, RegisterForm

BACKEND = "kameng.accounts.backends.UsernameOrPhoneBackend"
# Which register field a refusal of kameng.accounts.services.user_register is about (others show above the form).
REGISTER_ERROR_FIELDS = {"invalid_phone": "login", "invalid_username": "login", "login_unavailable": "login",
                         "weak_password": "password"}


class StoreLoginView(LoginView):
    template_name = "web/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True
    extra_context = {"page_url": reverse_lazy("web:login")}

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, _("登录成功"))
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 400
        if form.lock is not None:  # the message says why and for how long; Retry-After says it to programs
            response.status_code = 429
            response["Retry-After"] = str(form.lock.seconds)
        return response


class StoreLogoutView(LogoutView):
    """POST only (Django's default): a link cannot log anyone out. A GET (a typed or bookmarked address) goes
    home, still logged in, instead of getting a bare 405."""

    http_method_names = ["get", "post", "options"]

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return redirect("web:home")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, _("已退出登录"))  # the session is new by now: the message lives in the new one
        return response


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return "web:home"


@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("web:home")
    form = RegisterForm(request.POST or None)
    context = {"form": form, "next": request.POST.get("next") or request.GET.get("next", ""),
               "page_url": reverse("web:register")}
    if request.method != "POST":
        return render(request, "web/register.html", context)
    if not form.is_valid():
        return render(request, "web/register.html", context, status=400)
    try:
        user = user_register(login=form.cleaned_data["login"], password=form.cleaned_data["password"],
                             address=client_address(request))
    except ApplicationError as error:
        field = REGISTER_ERROR_FIELDS.get(error.code)
        if field is not None:  # said under the field it is about, like the form's own checks
            form.add_error(field, message_for(error))
            return render(request, "web/register.html", context, status=status_for(error))
        response = rejected(request, "web/register.html", context, error)
        if "retry_after" in error.extra:
            response["Retry-After"] = str(error.extra["retry_after"])
        return response
    login(request, user, backend=BACKEND)
    messages.success(request, _("注册成功，欢迎！"))
    return redirect(_next_url(request))
