"""Admin pieces shared by the simulated gateways' admins (demo and debugging only)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import models
from django.http import HttpRequest
from unfold.admin import ModelAdmin


class ReadOnlyRecordAdmin(ModelAdmin):
    """Every field read-only: a simulator's trades and refunds are written by its protocol, never by hand."""

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None) -> Sequence[str]:
        return [field.name for field in self.model._meta.fields]
