"""The URL map of a request for a sub-site that does not exist or is closed, or for a platform-only page asked on
a sub-site (kameng.web.subsites): every path answers the 404 page. The site's own map follows, never matched, so
that the page's links still reverse."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.utils.translation import gettext as _


def subsite_missing(request: HttpRequest, path: str = "") -> HttpResponse:
    return render(request, "web/error.html", {"error_message": _("该分站不存在或已关闭"),
                                              "error_code": "subsite_not_found"}, status=404)


urlpatterns: list[URLPattern | URLResolver] = [re_path(r"^(?P<path>.*)$", subsite_missing),
                                              path("", include("kameng.urls"))]
