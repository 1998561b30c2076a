"""The reseller console's API keys (API 密钥, /reseller/api-keys/): make a key (name, IP allow-list) and see its
secret once, list the keys with their last use, edit a key's name and allow-list, revoke a key. Only an approved
reseller; another reseller's key answers 404."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from kameng.core.errors import ApplicationError, NotFoundError
from kameng.resellers.apikeys import CreatedKey, api_key_create, api_key_revoke, api_key_update, api_keys_of
from kameng.resellers.models import ApiKey
from kameng.web.errors import message_for, status_for
from kameng.web.views.reseller_console import (
    RESELLER_CONSOLE_NAV,
    ResellerRequest,
    console_render,
    reseller_required,
)

RESELLER_CONSOLE_NAV.append(("web:reseller_apikeys", gettext_lazy("API 密钥")))


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("名称"), max_length=60,
                           help_text=gettext_lazy("用于区分不同的对接程序，例如「直播间批量采购」"))
    ip_allowlist = forms.CharField(label=gettext_lazy("IP 白名单"), required=False, widget=forms.Textarea(
        attrs={"rows": 3}), help_text=gettext_lazy("每行一个 IP 地址或 CIDR 网段（如 203.0.113.0/24）；留空不限制来源"))


def _page(request: ResellerRequest, *, form: ApiKeyForm | None = None, created: CreatedKey | None = None,
          error_message: str = "", status: int = 200) -> HttpResponse:
    context: dict[str, Any] = {"keys": api_keys_of(reseller_id=request.reseller.pk), "form": form or ApiKeyForm(),
                               "created": created, "error_message": error_message}
    response = console_render(request, "web/reseller/api_keys.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the secret is shown once, never kept by a cache
    return response


@require_http_methods(["GET", "POST"])
@reseller_required(active=True)
def reseller_apikeys(request: ResellerRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request)
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    try:
        created = api_key_create(reseller_id=request.reseller.pk, name=form.cleaned_data["name"],
                                 ip_allowlist=form.cleaned_data["ip_allowlist"])
    except ApplicationError as error:
        return _page(request, form=form, error_message=message_for(error), status=status_for(error))
    return _page(request, created=created)


def _own_key(request: ResellerRequest, key_id: int) -> ApiKey:
    key = ApiKey.objects.defer("secret").filter(pk=key_id, reseller_id=request.reseller.pk).first()
    if key is None:
        raise Http404("密钥不存在")
    return key


@require_http_methods(["GET", "POST"])
@reseller_required(active=True)
def reseller_apikey_edit(request: ResellerRequest, key_id: int) -> HttpResponse:
    key = _own_key(request, key_id)
    form = ApiKeyForm(request.POST if request.method == "POST" else None,
                      initial={"name": key.name, "ip_allowlist": key.ip_allowlist})
    error_message = ""
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            api_key_update(reseller_id=request.reseller.pk, api_key_pk=key.pk, name=form.cleaned_data["name"],
                           ip_allowlist=form.cleaned_data["ip_allowlist"])
        except ApplicationError as error:
            error_message, status = message_for(error), status_for(error)
        else:
            messages.success(request, _("密钥设置已保存"))
            return redirect("web:reseller_apikeys")
    elif request.method == "POST":
        status = 400
    return console_render(request, "web/reseller/api_key_edit.html",
                          {"key": key, "form": form, "error_message": error_message}, status=status)


@require_http_methods(["GET", "POST"])
@reseller_required(active=True)
def reseller_apikey_revoke(request: ResellerRequest, key_id: int) -> HttpResponse:
    """GET: a confirmation (revoking cannot be undone and stops the programs using the key at once); POST: revoke."""
    if request.method == "GET":
        key = _own_key(request, key_id)
        if not key.is_active:
            return redirect("web:reseller_apikeys")
        return console_render(request, "web/reseller/api_key_revoke.html", {"key": key})
    try:
        api_key_revoke(reseller_id=request.reseller.pk, api_key_pk=key_id)
    except NotFoundError as error:
        raise Http404("密钥不存在") from error
    messages.success(request, _("密钥已吊销，使用它的请求将被拒绝"))
    return redirect("web:reseller_apikeys")
