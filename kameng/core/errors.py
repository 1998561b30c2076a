"""One error type for rule violations; the web and API layers map it to HTTP in one place each."""

from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError


class ApplicationError(Exception):
    """A business rule said no. `message` is for people (Chinese by default), `code` is for programs.

    A message with values in it is given as a template and its `params` ("库存不足，仅剩 %(available)s 件",
    params={"available": 3}): `message` is the filled-in Chinese text, and the storefront translates the template
    before filling it in (kameng.web.errors.message_for), so the English page reads English too.
    """

    status_code = 400

    def __init__(self, message: str, *, code: str = "invalid", extra: dict[str, Any] | None = None,
                 status_code: int | None = None, params: dict[str, Any] | None = None) -> None:
        self.template = message
        self.params = params or {}
        if params:
            message = message % params
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra or {}
        if status_code is not None:
            self.status_code = status_code

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **({"extra": self.extra} if self.extra else {})}


class NotFoundError(ApplicationError):
    status_code = 404


class ConflictError(ApplicationError):
    """The request is valid but the current state forbids it (sold out, already paid, insufficient balance)."""

    status_code = 409


# The database could not be reached or the connection broke (a restart, a failover, backends terminated, no pooled
# connection free in time): not a fault of the request, and over in seconds. Each layer answers it 503 with
# Retry-After (kameng.web.middleware.DatabaseUnavailableMiddleware, kameng.api.urls), never 500.
DATABASE_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
DATABASE_UNAVAILABLE_CODE = "service_unavailable"
DATABASE_UNAVAILABLE_MESSAGE = "服务暂时不可用，请稍后重试"
DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS = 5
