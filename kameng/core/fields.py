"""Model fields that keep personal data encrypted at rest."""

from __future__ import annotations

from typing import Any

from django.db import models

from kameng.core.crypto import decrypt_text, encrypt_text


class EncryptedTextField(models.BinaryField):
    """Text stored as AES-256-GCM ciphertext bound to `context` (defaults to "<app_label>.<model>.<field>")."""

    def __init__(self, *args: Any, context: str | None = None, **kwargs: Any) -> None:
        self.encryption_context = context
        kwargs.setdefault("editable", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.encryption_context is not None:
            kwargs["context"] = self.encryption_context
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def _check_str_default_value(self) -> list[Any]:
        return []  # a text default is what this field stores (encrypted like any other value)

    def _context(self) -> str:
        if self.encryption_context:
            return self.encryption_context
        return f"{self.model._meta.label_lower}.{self.name}"

    def ciphertext(self, value: str) -> bytes:
        """What the column stores for `value`: for writes in plain SQL, which bypass the field."""
        return encrypt_text(value, context=self._context())

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None:
            return None
        return decrypt_text(bytes(value), context=self._context())

    def to_python(self, value: Any) -> Any:
        return value

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = encrypt_text(value, context=self._context())
        return super().get_db_prep_value(value, connection, prepared)

    def value_to_string(self, obj: Any) -> str:
        return "***"

    def formfield(self, **kwargs: Any) -> Any:
        from django import forms

        return forms.CharField(required=not self.blank, **kwargs)
