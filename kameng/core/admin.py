"""Admin building blocks shared by the domain apps' back-office pages."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """No add, change or delete permission: the page only shows what the services recorded (money, events, audit).

    Put it before the admin or inline base class: `class JournalAdmin(ReadOnlyAdminMixin, ModelAdmin)`.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
