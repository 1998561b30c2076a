"""The account's JSON: real-name verification (实名) — its masked status, and a verification."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from ninja import Field, Router, Schema

from kameng.accounts.selectors import RealNameView, realname_of
from kameng.accounts.services import realname_verify

router = Router(tags=["account"])


class RealNameOut(Schema):
    status: str = Field(..., description="unverified 未认证 | pending 认证中 | verified 已认证 | rejected 未通过")
    status_display: str
    is_verified: bool
    masked_name: str | None = Field(None, description="已认证时：姓名打码，如 张*三")
    masked_id_number: str | None = Field(None, description="已认证时：身份证号打码，如 110***********1234")
    verified_at: datetime | None
    rejection_code: str = Field(..., description="上次未通过的原因代码，如 mismatch、id_number_taken")
    attempts_left_today: int


class RealNameIn(Schema):
    name: str = Field(..., max_length=40, description="身份证上的姓名")
    id_number: str = Field(..., max_length=30, description="18 位居民身份证号码，末位可为 X")


def _user_id(request: HttpRequest) -> int:
    user_id = request.user.pk
    assert user_id is not None  # the API's default auth (django_auth) ran
    return int(user_id)


def _out(view: RealNameView) -> RealNameOut:
    return RealNameOut(status=view.status.value, status_display=view.status_display, is_verified=view.is_verified,
                       masked_name=view.masked_name, masked_id_number=view.masked_id_number,
                       verified_at=view.verified_at, rejection_code=view.rejection_code,
                       attempts_left_today=view.attempts_left_today)


@router.get("/realname", response=RealNameOut)
def get_realname(request: HttpRequest, response: HttpResponse) -> RealNameOut:
    patch_cache_control(response, no_store=True, private=True)
    return _out(realname_of(user_id=_user_id(request)))


@router.post("/realname", response=RealNameOut, description=(
    "提交姓名和身份证号码进行实名核验。400：格式、校验位、出生日期、地区代码或姓名不一致；409：已认证、正在认证或该身份证号"
    "已被其他账号认证；429：今日尝试次数已用完（Retry-After）；503：核验服务暂时不可用，可稍后重试（Retry-After），未记录为已认证"))
def post_realname(request: HttpRequest, response: HttpResponse, payload: RealNameIn) -> RealNameOut:
    patch_cache_control(response, no_store=True, private=True)
    realname_verify(user_id=_user_id(request), name=payload.name, id_number=payload.id_number)
    return _out(realname_of(user_id=_user_id(request)))
