"""examples/openapi_client.py: its signature is the server's, and it works end to end against a live server."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from kameng.core.openapi_signing import openapi_signature
from tests.factories import SkuFactory, stock_sku
from tests.resellers.openapi_support import reseller_with_key

CLIENT_PATH = Path(__file__).resolve().parents[2] / "examples" / "openapi_client.py"


def _client_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("openapi_client_example", CLIENT_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_example_signs_as_the_server_verifies() -> None:
    client = _client_module()
    cases = [("GET", "/openapi/v1/products", b""), ("POST", "/openapi/v1/orders", '{"a": "中文"}'.encode()),
             ("GET", "/openapi/v1/orders?request_no=A-1", b"")]

    for method, path, body in cases:
        assert client.sign(secret="s3cret", method=method, path_with_query=path, timestamp="1700000000",
                           nonce="0123456789abcdef", body=body) == openapi_signature(
            secret="s3cret", method=method, path_with_query=path, timestamp="1700000000", nonce="0123456789abcdef",
            body=body)


def test_the_example_uses_only_the_standard_library() -> None:
    tree = ast.parse(CLIENT_PATH.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}

    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


@pytest.mark.django_db(transaction=True)
def test_the_example_client_against_a_live_server(live_server: Any, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create()
    secrets = stock_sku(sku, 3)
    monkeypatch.setenv("KAMENG_DEMO_OPENAPI_KEY", holder.key.key_id)
    monkeypatch.setenv("KAMENG_DEMO_OPENAPI_SECRET", holder.secret)
    client = _client_module()

    def run(*argv: str) -> tuple[int, Any]:
        code = client.main(["--base-url", live_server.url, *argv])
        out = capsys.readouterr().out
        return code, json.loads(out.split("\n", 1)[1])

    products = run("products")
    balance = run("balance")
    ordered = run("order", "--sku-id", str(sku.pk), "--quantity", "2", "--request-no", "EX-1")
    by_number = run("get", ordered[1]["order_no"])
    by_request = run("get", "--request-no", "EX-1")
    refused = run("order", "--sku-id", str(sku.pk), "--quantity", "5", "--request-no", "EX-2")

    assert products[0] == 0
    assert products[1][0]["sku_id"] == sku.pk
    assert balance == (0, {"balance": "100.00"})
    assert ordered[0] == 0
    assert set(ordered[1]["keys"]) <= set(secrets)
    assert by_number == by_request == ordered
    assert refused == (1, refused[1])
    assert refused[1]["code"] == "sold_out"
