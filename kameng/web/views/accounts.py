"""Register, log in and log out. The login page has three tabs: 密码登录 (username or phone + password), 短信登录
(phone + SMS code; an unknown number registers) and 一键登录 (a carrier token; the demo's carrier is the simulator
at /sim/onetap/). Each tab is a plain form that works without JavaScript; web/login.js only switches tabs in place,
counts down the resend wait and sends the one-tap token on by itself."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from kameng.accounts.onetap import onetap_backend
from kameng.accounts.phone_login import PhoneLogin, phone_code_send, phone_login_with_code, phone_login_with_onetap
from kameng.accounts.services import user_register
from kameng.core.device import device_id, risk_device_id
from kameng.core.errors import ApplicationError
from kameng.core.http import client_address
from kameng.resellers.attribution import referral_after_registration
from kameng.web.errors import message_for, rejected, status_for
from kameng.web.forms import LoginForm, PhoneLoginForm, RegisterForm

BACKEND = "kameng.accounts.backends.UsernameOrPhoneBackend"
# Which register field a refusal of kameng.accounts.services.user_register is about (others show above the form).
REGISTER_ERROR_FIELDS = {"invalid_phone": "login", "invalid_username": "login", "login_unavailable": "login",
                         "weak_password": "password"}


LOGIN_TABS = ("password", "sms", "onetap")


class StoreLoginView(LoginView):
    template_name = "web/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True
    extra_context = {"page_url": reverse_lazy("web:login")}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        tab = self.request.GET.get("tab", "")
        if self.request.method == "POST":
            risk_error = getattr(kwargs.get("form"), "risk_error", None)
            # Risk control wants an SMS code for this login: the SMS tab, with the message above it.
            tab = "sms" if risk_error is not None and risk_error.code == "sms_required" else "password"
        return {**_phone_context(self.request, tab=tab), **context}

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
        elif form.risk_error is not None:  # refused by risk control (kameng.risk.engine)
            response.status_code = form.risk_error.status_code
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
                             address=client_address(request), device=risk_device_id(request))
    except ApplicationError as error:
        field = REGISTER_ERROR_FIELDS.get(error.code)
        if field is not None:  # said under the field it is about, like the form's own checks
            form.add_error(field, message_for(error))
            return render(request, "web/register.html", context, status=status_for(error))
        response = rejected(request, "web/register.html", context, error)
        if "retry_after" in error.extra:
            response["Retry-After"] = str(error.extra["retry_after"])
        return response
    referral_after_registration(request, user_id=user.pk)
    login(request, user, backend=BACKEND)
    messages.success(request, _("注册成功，欢迎！"))
    return redirect(_next_url(request))


# --- phone login: SMS code and one-tap --------------------------------------------------------------------------------

def _onetap_start_url(request: HttpRequest, next_url: str) -> str | None:
    """Where the 一键登录 button goes: the demo's carrier page (the simulator backend), or nowhere (None) when the
    carrier's SDK has to run in an app (aliyun: the JSON API is for apps) or one-tap is off."""
    backend = onetap_backend()
    if backend is None or backend.name != "simulator":
        return None
    back = reverse("web:login") + "?" + urlencode({"tab": "onetap", **({"next": next_url} if next_url else {})})
    return reverse("simulators:onetap") + "?" + urlencode({"return": back})


def _phone_context(request: HttpRequest, *, tab: str, sms_form: PhoneLoginForm | None = None,
                   **extra: Any) -> dict[str, Any]:
    next_url = request.POST.get("next") or request.GET.get("next", "")
    onetap_token = request.GET.get("onetap_token", "") if request.method == "GET" else ""
    if onetap_token:
        tab = "onetap"
    return {
        "tab": tab if tab in LOGIN_TABS else "password",
        "sms_form": sms_form if sms_form is not None else PhoneLoginForm(),
        "onetap_enabled": onetap_backend() is not None,
        "onetap_start_url": _onetap_start_url(request, next_url),
        "onetap_token": onetap_token,
        "next": next_url,
        "page_url": reverse("web:login"),
        **extra,
    }


def _login_page(request: HttpRequest, *, tab: str, status: int = 200, sms_form: PhoneLoginForm | None = None,
                error: ApplicationError | None = None, **extra: Any) -> HttpResponse:
    context = {"form": LoginForm(request), **_phone_context(request, tab=tab, sms_form=sms_form, **extra)}
    if error is not None:
        context.update(error_message=message_for(error), error_code=error.code)
        status = error.status_code if error.status_code == 503 else status_for(error)
    response = render(request, "web/login.html", context, status=status)
    if error is not None and "retry_after" in error.extra:
        response["Retry-After"] = str(error.extra["retry_after"])
    return response


def _logged_in(request: HttpRequest, result: PhoneLogin) -> HttpResponse:
    if result.created:
        referral_after_registration(request, user_id=result.user.pk)
    login(request, result.user, backend=BACKEND)
    messages.success(request, _("注册成功，欢迎！") if result.created else _("登录成功"))
    return redirect(_next_url(request))


@require_http_methods(["POST"])
def login_sms_send(request: HttpRequest) -> HttpResponse:
    """获取验证码: send a code to the number typed, then show the same tab with the number kept."""
    form = PhoneLoginForm(request.POST)
    if not form.is_valid():
        return _login_page(request, tab="sms", sms_form=form, status=400)
    try:
        sent = phone_code_send(phone=form.cleaned_data["phone"], address=client_address(request),
                               device=device_id(request))
    except ApplicationError as error:
        return _login_page(request, tab="sms", sms_form=form, error=error)
    return _login_page(request, tab="sms", sms_form=PhoneLoginForm(initial={"phone": form.cleaned_data["phone"]}),
                       code_sent=True, resend_in=sent.resend_in, expires_minutes=max(1, sent.expires_in // 60))


@require_http_methods(["POST"])
def login_sms(request: HttpRequest) -> HttpResponse:
    """短信登录: log in, or register an unknown number, with the code it received."""
    if request.user.is_authenticated:
        return redirect("web:home")
    form = PhoneLoginForm(request.POST, code_required=True)
    if not form.is_valid():
        return _login_page(request, tab="sms", sms_form=form, status=400)
    try:
        result = phone_login_with_code(phone=form.cleaned_data["phone"], code=form.cleaned_data["code"],
                                       address=client_address(request), device=risk_device_id(request))
    except ApplicationError as error:
        return _login_page(request, tab="sms", sms_form=form, error=error)
    return _logged_in(request, result)


@require_http_methods(["POST"])
def login_onetap(request: HttpRequest) -> HttpResponse:
    """一键登录: the carrier's token (from its SDK, or the demo's simulator) for the number it vouches for."""
    if request.user.is_authenticated:
        return redirect("web:home")
    try:
        result = phone_login_with_onetap(token=request.POST.get("token", ""), address=client_address(request),
                                         device=risk_device_id(request))
    except ApplicationError as error:
        return _login_page(request, tab="onetap", error=error)
    return _logged_in(request, result)
