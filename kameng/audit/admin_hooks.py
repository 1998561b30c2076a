"""The admin's generic audit: every model admin records what staff add, change and delete (the main row and its
inline rows, the changed fields before and after) and the bulk actions they run (which rows). Installed on every
registered model admin when the app is ready (`audit_admin_install`), so a new admin in any app is covered without
doing anything; staff actions on their own pages (a refund, a withdrawal paid) record themselves explicitly with
kameng.audit.services.audit_record.

Installed by giving each registered admin a subclass with `AuditedAdminMixin` in front of its own class: the admin
classes stay as their apps wrote them, and this app imports none of them (it sits below every app that has one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.admin import AdminSite, ModelAdmin
from django.db import models
from django.forms import BaseModelForm
from django.forms.models import BaseModelFormSet
from django.http import HttpRequest, HttpResponse

from kameng.audit.models import AuditEntry
from kameng.audit.services import audit_model_change as _change
from kameng.audit.services import audit_record
from kameng.audit.snapshots import MAX_MANY_TO_MANY_IDS, model_snapshot_raw, object_type_of

BEFORE_ATTRIBUTE = "_audit_before"
MAX_DELETED_AUDITED = 1000  # a bulk delete records each row up to this many (then one entry for the rest)


def _stash(request: HttpRequest) -> dict[tuple[str, Any], dict[str, Any]]:
    stash = getattr(request, BEFORE_ATTRIBUTE, None)
    if stash is None:
        stash = {}
        setattr(request, BEFORE_ATTRIBUTE, stash)
    return stash


def _stored(instance: models.Model) -> models.Model | None:
    return type(instance)._base_manager.filter(pk=instance.pk).first()


class AuditedAdminMixin:
    """Put in front of a ModelAdmin class (audit_admin_install does it for every registered admin)."""

    def save_model(self, request: HttpRequest, obj: Any, form: BaseModelForm, change: bool) -> None:
        if change and obj.pk is not None:
            stored = _stored(obj)  # the form already wrote the new values onto obj: read the old ones back
            if stored is not None:
                _stash(request)[(object_type_of(obj), obj.pk)] = model_snapshot_raw(stored)
        super().save_model(request, obj, form, change)  # type: ignore[misc]

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        # Called after the row and its many-to-many and inline rows are saved.
        _change(request=request, action="admin.add", instance=obj, object_id=obj.pk, before_raw=None,
                after_raw=model_snapshot_raw(obj))
        return super().log_addition(request, obj, message)  # type: ignore[misc]

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        before = _stash(request).pop((object_type_of(obj), obj.pk), None)
        if before is not None:
            _change(request=request, action="admin.change", instance=obj, object_id=obj.pk, before_raw=before,
                    after_raw=model_snapshot_raw(obj))
        return super().log_change(request, obj, message)  # type: ignore[misc]

    def save_formset(self, request: HttpRequest, form: BaseModelForm, formset: BaseModelFormSet,
                     change: bool) -> None:
        model = formset.model
        assert model is not None
        ids = [inline.instance.pk for inline in formset.initial_forms if inline.instance.pk is not None]
        before = {row.pk: model_snapshot_raw(row, with_many_to_many=False)
                  for row in model._base_manager.filter(pk__in=ids)} if ids else {}
        # Django clears a deleted row's pk: remember which row had which.
        deleted_ids = {id(inline.instance): inline.instance.pk for inline in formset.deleted_forms
                       if inline.instance.pk is not None}
        super().save_formset(request, form, formset, change)  # type: ignore[misc]
        for row in getattr(formset, "new_objects", []):
            _change(request=request, action="admin.add", instance=row, object_id=row.pk, before_raw=None,
                    after_raw=model_snapshot_raw(row, with_many_to_many=False))
        for row, _fields in getattr(formset, "changed_objects", []):
            if row.pk in before:
                _change(request=request, action="admin.change", instance=row, object_id=row.pk,
                        before_raw=before[row.pk], after_raw=model_snapshot_raw(row, with_many_to_many=False))
        for row in getattr(formset, "deleted_objects", []):
            old_id = deleted_ids.get(id(row))
            if old_id in before:
                _change(request=request, action="admin.delete", instance=row, object_id=old_id,
                        before_raw=before[old_id], after_raw=None)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        object_id = obj.pk
        before = model_snapshot_raw(obj)
        super().delete_model(request, obj)  # type: ignore[misc]
        _change(request=request, action="admin.delete", instance=obj, object_id=object_id, before_raw=before,
                after_raw=None)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> None:
        rows = list(queryset[:MAX_DELETED_AUDITED + 1])
        befores = [(row, row.pk, model_snapshot_raw(row)) for row in rows[:MAX_DELETED_AUDITED]]
        super().delete_queryset(request, queryset)  # type: ignore[misc]
        for row, object_id, before in befores:
            _change(request=request, action="admin.delete", instance=row, object_id=object_id, before_raw=before,
                    after_raw=None)
        if len(rows) > MAX_DELETED_AUDITED:
            audit_record(action="admin.delete", request=request, object_type=object_type_of(queryset.model),
                         message=f"批量删除超过 {MAX_DELETED_AUDITED} 条，其余未逐条记录")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        return {name: (_audited_action(name, func), name_, description)
                for name, (func, name_, description) in actions.items()}


def _audited_action(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    if name == "delete_selected":
        return func  # each deleted row is recorded by delete_queryset, and only once the deletion is confirmed

    def run(modeladmin: ModelAdmin[Any], request: HttpRequest, queryset: models.QuerySet[Any]) -> Any:
        ids = [str(pk) for pk in queryset.order_by("pk").values_list("pk", flat=True)[:MAX_MANY_TO_MANY_IDS]]
        response: HttpResponse | None = func(modeladmin, request, queryset)
        audit_record(action=f"admin.action:{name}", request=request, object_type=object_type_of(queryset.model),
                     object_id=ids[0] if len(ids) == 1 else "", object_repr=f"{len(ids)} 条",
                     after={"selected": ids})
        return response

    for attribute in ("short_description", "allowed_permissions", "__name__"):
        if hasattr(func, attribute):
            setattr(run, attribute, getattr(func, attribute))
    return run


def audit_admin_install(site: AdminSite) -> None:
    """Give every model admin registered on `site` (but the audit log's own) the audit mixin."""
    for model, model_admin in list(site._registry.items()):
        cls = type(model_admin)
        if model is AuditEntry or issubclass(cls, AuditedAdminMixin):
            continue
        model_admin.__class__ = type(cls.__name__, (AuditedAdminMixin, cls), {"__module__": cls.__module__})
