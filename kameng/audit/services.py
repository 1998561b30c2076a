"""Writing audit entries: `audit_record` for an explicit staff action (a refund, a withdrawal paid, an export), and
`audit_model_change` for a row staff added, changed or deleted (the admin hooks call it for every model admin).

Entries are written in the caller's transaction: an action rolled back leaves no entry claiming it happened."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from kameng.audit.models import AuditEntry
from kameng.audit.snapshots import json_safe_masked, object_type_of, snapshot_changes, snapshot_masked
from kameng.core.http import client_address

USER_AGENT_MAX = 300
REPR_MAX = 200


def _actor_of(request: HttpRequest | None, actor: Any) -> tuple[int | None, str]:
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None, ""
    return actor.pk, str(actor.get_username())


def _entry_create(*, request: HttpRequest | None, actor: Any, action: str, object_type: str, object_id: Any,
                  object_repr: str, before: Any, after: Any, message: str) -> AuditEntry:
    actor_id, actor_username = _actor_of(request, actor)
    ip_address = client_address(request) if request is not None else ""
    user_agent = str(request.META.get("HTTP_USER_AGENT", ""))[:USER_AGENT_MAX] if request is not None else ""
    return AuditEntry.objects.create(
        actor_id=actor_id, actor_username=actor_username, action=action, object_type=object_type,
        object_id=str(object_id if object_id is not None else "")[:64], object_repr=str(object_repr)[:REPR_MAX],
        before=before, after=after, message=message[:500], ip_address=ip_address or None, user_agent=user_agent)


def audit_record(*, action: str, request: HttpRequest | None = None, actor: Any = None,
                 instance: models.Model | None = None, object_type: str = "", object_id: Any = "",
                 object_repr: str = "", before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
                 message: str = "") -> AuditEntry:
    """Record one staff action. `instance` fills the object's type, id and repr; `before`/`after` are masked by
    key (kameng/audit/snapshots.py), so a caller may pass plain values."""
    if instance is not None:
        object_type = object_type or object_type_of(instance)
        object_id = object_id or instance.pk
        object_repr = object_repr or str(instance)
    return _entry_create(request=request, actor=actor, action=action, object_type=object_type, object_id=object_id,
                         object_repr=object_repr,
                         before=json_safe_masked(before) if before is not None else None,
                         after=json_safe_masked(after) if after is not None else None, message=message)


def audit_model_change(*, request: HttpRequest | None, action: str, instance: models.Model, object_id: Any,
                       before_raw: dict[str, Any] | None, after_raw: dict[str, Any] | None,
                       message: str = "") -> AuditEntry | None:
    """A row added (before None), changed (only the fields that differ; nothing written if none did) or deleted
    (after None; `object_id` is the id it had, Django clears it on delete). The raw snapshots come from
    kameng.audit.snapshots.model_snapshot_raw."""
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    if before_raw is not None and after_raw is not None:
        before, after = snapshot_changes(before_raw, after_raw)
        if not after:
            return None
    else:
        before = snapshot_masked(before_raw) if before_raw is not None else None
        after = snapshot_masked(after_raw) if after_raw is not None else None
    return _entry_create(request=request, actor=None, action=action, object_type=object_type_of(instance),
                         object_id=object_id, object_repr=str(instance), before=before, after=after,
                         message=message)
