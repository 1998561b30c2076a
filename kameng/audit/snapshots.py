"""A model row as the audit log keeps it: concrete fields (foreign keys as ids, many-to-many as sorted ids), made
JSON-safe, with secrets and personal data masked — an audit entry must not become a copy of what the fields
encrypt (ciphertexts, keys, passwords and blind indexes are never shown; phone numbers, names and ID numbers
masked; other text through kameng.core.masking.mask_text)."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

from django.db import models
from django.db.models.fields.files import FieldFile

from kameng.core.masking import mask_person_name, mask_phone, mask_secret, mask_text

MASKED = "***"
# A field whose name has one of these words holds a secret: its value is never written, only that it changed.
SECRET_WORDS = frozenset({"password", "secret", "token", "key", "pin", "fingerprint", "ciphertext", "index", "hash",
                          "otp", "payload", "signature", "sign"})
PERSON_NAME_FIELDS = frozenset({"real_name", "legal_name", "account_name", "holder_name", "full_name"})
ID_NUMBER_WORDS = frozenset({"id_number", "id_card", "identity_number", "account_number", "bank_account"})
MAX_MANY_TO_MANY_IDS = 200


def _is_secret(name: str) -> bool:
    return bool(SECRET_WORDS.intersection(name.lower().split("_")))


_CONVERTERS: tuple[tuple[type | tuple[type, ...], Any], ...] = (
    (decimal.Decimal, str),
    ((datetime.datetime, datetime.date, datetime.time), lambda value: value.isoformat()),
    (uuid.UUID, str),
    ((bytes, memoryview, bytearray), lambda value: MASKED),
    (FieldFile, lambda value: value.name or ""),
    (dict, lambda value: {str(key): json_safe(item) for key, item in value.items()}),
    ((list, tuple, set, frozenset), lambda value: [json_safe(item) for item in value]),
)


def json_safe(value: Any) -> Any:
    """A value the JSON column can hold, unmasked (masking is by field name, in `field_value_masked`)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    for kinds, convert in _CONVERTERS:
        if isinstance(value, kinds):
            return convert(value)
    return str(value)


def _masked_by_name(lowered: str, text: str) -> str:
    if _is_secret(lowered):
        return MASKED
    if "phone" in lowered:
        return mask_phone(text)
    if lowered in PERSON_NAME_FIELDS:
        return mask_person_name(text)
    if any(word in lowered for word in ID_NUMBER_WORDS):
        return mask_secret(text)
    return mask_text(text)


def field_value_masked(name: str, value: Any) -> Any:
    """`value` of the field `name` as the audit log shows it."""
    if isinstance(value, bytes | memoryview | bytearray):
        return MASKED if value else ""
    value = json_safe(value)
    if value is None or value == "":
        return value
    if isinstance(value, dict | list):
        return MASKED if _is_secret(name.lower()) else json_safe_masked(value)
    if isinstance(value, str) or _is_secret(name.lower()):
        return _masked_by_name(name.lower(), str(value))
    return value


def json_safe_masked(value: Any, name: str = "") -> Any:
    """A JSON value (an explicit call's before/after) with every string masked by its key."""
    if isinstance(value, dict):
        return {str(key): json_safe_masked(item, str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe_masked(item, name) for item in value]
    return field_value_masked(name, json_safe(value)) if name else (
        mask_text(value) if isinstance(value, str) else json_safe(value))


def model_snapshot_raw(instance: models.Model, *, with_many_to_many: bool = True) -> dict[str, Any]:
    """Field name → raw value (ids for relations): what two snapshots are compared on."""
    values: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        values[field.name] = field.value_from_object(instance)
    if with_many_to_many and instance.pk is not None:
        for field in instance._meta.many_to_many:
            manager = getattr(instance, field.name)
            values[field.name] = sorted(manager.values_list("pk", flat=True)[:MAX_MANY_TO_MANY_IDS])
    return values


def snapshot_masked(raw: dict[str, Any]) -> dict[str, Any]:
    return {name: field_value_masked(name, value) for name, value in raw.items()}


def _comparable(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview | bytearray) else value


def snapshot_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(before, after) of the fields whose value differs, masked. A secret that changed shows as *** → ***."""
    changed = [name for name in after if _comparable(before.get(name)) != _comparable(after.get(name))]
    return ({name: field_value_masked(name, before.get(name)) for name in changed},
            {name: field_value_masked(name, after.get(name)) for name in changed})


def object_type_of(model: type[models.Model] | models.Model) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"
