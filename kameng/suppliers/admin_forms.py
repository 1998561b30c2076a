"""The staff form of a supplier's connector config (对接配置): the stored JSON is shown with its secrets masked and
never rendered whole; staff type only what changes, merged over what is stored key by key (`null` removes a key),
so a secret is not retyped to change a path. A generic HTTP config is checked as the connector would read it."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.html import format_html

from kameng.core.errors import ApplicationError
from kameng.core.masking import mask_secret
from kameng.suppliers.connectors.http_config import http_config_resolve
from kameng.suppliers.connectors.registry import connector_config_of
from kameng.suppliers.models import ConnectorKind, Supplier

SECRET_WORDS = ("secret", "key", "token", "password")


def masked_config(config: dict[str, Any]) -> dict[str, Any]:
    def mask(name: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: mask(key, item) for key, item in value.items()}
        if any(word in name.lower() for word in SECRET_WORDS) and isinstance(value, str):
            return mask_secret(value)
        return value

    return {key: mask(key, value) for key, value in config.items()}


def connector_config_masked(supplier: Supplier) -> str:
    try:
        config = connector_config_of(supplier)
    except (ApplicationError, ValueError):
        return "（配置无法解析）"
    if not config:
        return "（未配置）"
    return format_html("<pre>{}</pre>", json.dumps(masked_config(config), ensure_ascii=False, indent=2))


class SupplierAdminForm(forms.ModelForm):
    connector_config_change = forms.CharField(
        label="修改对接配置", required=False, widget=forms.Textarea(attrs={"rows": 6}),
        help_text='JSON 对象，与已保存的配置按键合并；值为 null 删除该键；留空不修改。例如 {"preset": "yile", '
                  '"base_url": "https://…/api/", "app_id": "…", "app_secret": "…"}；价格推送密钥 push_secret，补货通知 '
                  "webhook_url、webhook_secret、notify_email。完整说明见 DEVELOPERS.md「Supplier upstreams」。",
    )

    class Meta:
        model = Supplier
        # The admin lists the fields (other pages add theirs); the ciphertext column is never a form field.
        exclude = ("connector_config",)  # noqa: DJ006

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        text = (data.get("connector_config_change") or "").strip()
        try:
            stored = connector_config_of(self.instance) if self.instance.pk else {}
        except (ApplicationError, ValueError):
            stored = {}
        merged = dict(stored)
        if text:
            try:
                change = json.loads(text)
            except ValueError:
                self.add_error("connector_config_change", "不是有效的 JSON")
                return data
            if not isinstance(change, dict):
                self.add_error("connector_config_change", "必须是 JSON 对象 {…}")
                return data
            merged.update(change)
            merged = {key: value for key, value in merged.items() if value is not None}
        if data.get("connector_kind") == ConnectorKind.HTTP and (text or merged):
            try:
                http_config_resolve(merged)
            except ApplicationError as error:
                self.add_error("connector_config_change", error.message)
        self._merged = merged
        return data

    def save(self, commit: bool = True) -> Any:
        if (self.cleaned_data.get("connector_config_change") or "").strip():
            self.instance.connector_config = json.dumps(self._merged, ensure_ascii=False) if self._merged else None
        return super().save(commit=commit)
