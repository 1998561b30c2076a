"""Flash messages with the lazy message middleware: built only when used, kept until someone reads them."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.cache import SessionStore
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.utils.functional import empty

from kameng.web.middleware import LazyMessageMiddleware


def _through_middleware(view: Callable[[HttpRequest], HttpResponse], request: HttpRequest) -> HttpResponse:
    request.session = SessionStore()  # what SessionMiddleware would have set
    response = LazyMessageMiddleware(view)(request)
    assert isinstance(response, HttpResponse)
    return response


def test_a_request_that_never_touches_messages_builds_no_storage_and_sets_no_cookie() -> None:
    request = RequestFactory().get("/api/v1/shop/wallet")

    response = _through_middleware(lambda _request: HttpResponse("ok"), request)

    assert request._messages._wrapped is empty  # type: ignore[attr-defined]
    assert "messages" not in response.cookies


def test_a_message_added_in_one_request_is_shown_in_the_next_and_only_once() -> None:
    def add(request: HttpRequest) -> HttpResponse:
        messages.success(request, "已加入购物车")
        return HttpResponse("added")

    first = RequestFactory().post("/cart")
    added = _through_middleware(add, first)
    assert isinstance(first._messages._wrapped, FallbackStorage)  # type: ignore[attr-defined]
    cookie = added.cookies["messages"].value

    def untouched(_request: HttpRequest) -> HttpResponse:
        return HttpResponse("no messages read here")

    between = RequestFactory().get("/api/v1/shop/wallet")
    between.COOKIES["messages"] = cookie
    kept = _through_middleware(untouched, between)
    assert "messages" not in kept.cookies  # neither read nor deleted: still waiting in the browser

    shown: list[str] = []

    def show(request: HttpRequest) -> HttpResponse:
        shown.extend(str(message) for message in messages.get_messages(request))
        return HttpResponse("shown")

    later = RequestFactory().get("/orders")
    later.COOKIES["messages"] = cookie
    read = _through_middleware(show, later)
    assert shown == ["已加入购物车"]
    assert read.cookies["messages"].value == ""  # read once, then cleared
