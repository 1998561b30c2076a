"""Storefront JSON for logging in by phone: ask for an SMS code, log in (or register) with it or with a carrier's
one-tap token. A success opens the same Django session as the storefront's login (the session cookie then
authenticates the shop's other routes, with X-CSRFToken on writes).

These routes need no session, so ninja checks no CSRF token; instead they take JSON only (Content-Type:
application/json), which a page on another site cannot send without the browser asking this site first (CORS
preflight) — so another site cannot log a visitor into an account of its choosing. App clients name their device
in `X-Device-Id` (kameng.core.device); limits answer 429 with `extra.retry_after` and a Retry-After header.
"""

from __future__ import annotations

from django.contrib.auth import login
from django.http import HttpRequest
from ninja import Field, Router, Schema

from kameng.accounts.phone_login import PhoneLogin, phone_code_send, phone_login_with_code, phone_login_with_onetap
from kameng.core.device import device_id, risk_device_id
from kameng.core.errors import ApplicationError
from kameng.core.http import client_address
from kameng.resellers.attribution import referral_after_registration

router = Router(tags=["account"])

BACKEND = "kameng.accounts.backends.UsernameOrPhoneBackend"


class PhoneIn(Schema):
    phone: str = Field(..., max_length=32, description="11 位中国大陆手机号")


class CodeSentOut(Schema):
    expires_in: int = Field(..., description="验证码有效期（秒）")
    resend_in: int = Field(..., description="多少秒后可再次获取")


class PhoneCodeLoginIn(Schema):
    phone: str = Field(..., max_length=32)
    code: str = Field(..., max_length=16, description="短信中的 6 位数字验证码")


class OneTapLoginIn(Schema):
    token: str = Field(..., max_length=4096, description="运营商 SDK 返回的一键登录凭证")


class LoginOut(Schema):
    user_id: int
    username: str
    created: bool = Field(..., description="true：该手机号此次新注册")


def _json_only(request: HttpRequest) -> None:
    if request.content_type != "application/json":
        raise ApplicationError("请求体需要 JSON（Content-Type: application/json）", code="json_required",
                               status_code=415)


def _logged_in(request: HttpRequest, result: PhoneLogin) -> LoginOut:
    if result.created:
        referral_after_registration(request, user_id=result.user.pk)
    login(request, result.user, backend=BACKEND)
    return LoginOut(user_id=result.user.pk, username=result.user.username, created=result.created)


@router.post("/phone/code", response=CodeSentOut, auth=None)
def send_phone_code(request: HttpRequest, payload: PhoneIn) -> CodeSentOut:
    _json_only(request)
    sent = phone_code_send(phone=payload.phone, address=client_address(request), device=device_id(request))
    return CodeSentOut(expires_in=sent.expires_in, resend_in=sent.resend_in)


@router.post("/phone/login", response=LoginOut, auth=None)
def login_with_phone_code(request: HttpRequest, payload: PhoneCodeLoginIn) -> LoginOut:
    _json_only(request)
    result = phone_login_with_code(phone=payload.phone, code=payload.code, address=client_address(request),
                                   device=risk_device_id(request))
    return _logged_in(request, result)


@router.post("/phone/onetap", response=LoginOut, auth=None)
def login_with_onetap(request: HttpRequest, payload: OneTapLoginIn) -> LoginOut:
    _json_only(request)
    result = phone_login_with_onetap(token=payload.token, address=client_address(request),
                                     device=risk_device_id(request))
    return _logged_in(request, result)
