"""The connector of a supplier, by its `connector_kind` and decrypted `connector_config`.

Kinds register here as their modules land (`CONNECTOR_FACTORIES`); a test can pass its own factory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kameng.core.errors import ApplicationError
from kameng.suppliers.connectors.base import SupplierConnector
from kameng.suppliers.models import Supplier

ConnectorFactory = Callable[[dict[str, Any]], SupplierConnector]

CONNECTOR_FACTORIES: dict[str, ConnectorFactory] = {}


def _fulu_connector(config: dict[str, Any]) -> SupplierConnector:
    from kameng.suppliers.connectors.fulu import FuluConnector

    return FuluConnector(config)


CONNECTOR_FACTORIES["fulu"] = _fulu_connector


def connector_config_of(supplier: Supplier) -> dict[str, Any]:
    raw = str(supplier.connector_config or "")
    if not raw:
        return {}
    config = json.loads(raw)
    if not isinstance(config, dict):
        raise ApplicationError("供货商对接配置不是 JSON 对象", code="connector_config_invalid")
    return config


def connector_for(supplier: Supplier) -> SupplierConnector:
    factory = CONNECTOR_FACTORIES.get(supplier.connector_kind)
    if factory is None:
        raise ApplicationError("供货商对接方式「%(kind)s」没有可用的接口", code="connector_unavailable",
                               params={"kind": supplier.get_connector_kind_display()})
    # The connector may need to know whose it is (the kameng connector verifies callbacks signed over our URL).
    return factory({**connector_config_of(supplier), "_supplier_id": supplier.pk})


def _http_connector(config: dict[str, Any]) -> SupplierConnector:
    from kameng.suppliers.connectors.http import HttpConnector

    return HttpConnector(config)


CONNECTOR_FACTORIES["http"] = _http_connector


def _kameng_connector(config: dict[str, Any]) -> SupplierConnector:
    from kameng.suppliers.connectors.kameng import KamengConnector

    return KamengConnector(config)


CONNECTOR_FACTORIES["kameng"] = _kameng_connector
