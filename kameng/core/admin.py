"""Admin building blocks shared by the domain apps' back-office pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import models
from django.http import HttpRequest
from django.templatetags.static import static


def admin_favicon_url(request: HttpRequest) -> str:
    """The back office's favicon (settings.UNFOLD["SITE_FAVICONS"]), served from our static files: without one
    every admin page made the browser ask for /favicon.ico and get a 404."""
    return static("kameng/favicon.svg")


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


class ProtectedDeleteSummaryMixin:
    """Refuse deleting rows that PROTECT/RESTRICT references still point at, with one count per kind of row.

    Django's delete page (and the changelist's delete action) lists every protected row: a buyer's thousands of
    orders, or a SKU's card keys, make a page the browser cannot load, after loading them all. This counts the
    direct references instead, one COUNT per relation for all selected rows, and shows one short line. Deeper
    references (through a cascade) are left to Django's own check.
    """

    delete_refusal_hint = ""  # what to do instead, e.g. "请取消「有效」停用账号"

    def get_deleted_objects(self, objs: Sequence[Any] | models.QuerySet[Any],
                            request: HttpRequest) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        ids = [obj.pk for obj in objs]
        if not ids:
            return super().get_deleted_objects(objs, request)  # type: ignore[misc]
        model = objs[0]._meta.concrete_model
        what = protected_references_text(model, ids)
        if what:
            hint = f"；{self.delete_refusal_hint}" if self.delete_refusal_hint else ""
            return [], {}, set(), [f"仍有{what}引用所选的{model._meta.verbose_name}，不能删除{hint}"]
        return super().get_deleted_objects(objs, request)  # type: ignore[misc]


def protected_reference_counts(model: type[models.Model], ids: list[Any]) -> list[tuple[str, int]]:
    """(verbose name, count) of the rows whose PROTECT or RESTRICT foreign key points at one of `ids`."""
    counts = []
    for relation in model._meta.related_objects:
        if relation.on_delete not in (models.PROTECT, models.RESTRICT) or relation.many_to_many:
            continue
        related = relation.related_model
        assert not isinstance(related, str)
        count = related._base_manager.filter(**{f"{relation.field.name}__in": ids}).count()
        if count:
            counts.append((str(related._meta.verbose_name), count))
    return sorted(counts)  # related_objects' order depends on which app's models were imported first


def protected_references_text(model: type[models.Model], ids: list[Any]) -> str:
    """The rows that keep `ids` from being deleted, as staff read them ("卡密 25 条、订单 1 条"), or "" if none.

    Counted through the models' relations, so a lower app (the catalogue) can say what higher apps (stock, orders)
    hold on to without importing them."""
    return "、".join(f"{name} {count} 条" for name, count in protected_reference_counts(model, ids))


class AdminThemeFormMixin:
    """For plain `forms.Form`s drawn on back-office pages (confirmations, reports): Django's bare widgets render
    borderless in Unfold's theme, so staff cannot see where to type. Each bare widget is swapped for Unfold's own,
    keeping its attributes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from django import forms
        from unfold import widgets

        themed: dict[type[forms.Widget], type[forms.Widget]] = {
            forms.TextInput: widgets.UnfoldAdminTextInputWidget,
            forms.NumberInput: widgets.UnfoldAdminDecimalFieldWidget,
            forms.Textarea: widgets.UnfoldAdminTextareaWidget,
            forms.Select: widgets.UnfoldAdminSelectWidget,
            forms.CheckboxInput: widgets.UnfoldBooleanWidget,
        }
        for field in self.fields.values():  # type: ignore[attr-defined]
            replacement = themed.get(type(field.widget))
            if replacement is not None:
                widget = replacement(attrs=field.widget.attrs)
                if isinstance(field.widget, forms.Select):
                    widget.choices = field.widget.choices  # type: ignore[attr-defined]
                field.widget = widget
