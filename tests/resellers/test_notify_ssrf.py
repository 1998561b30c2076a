"""The SSRF guard of notification targets (kameng.core.ssrf): each refusal, the address pinned at connect time, no
redirects followed."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest

from kameng.core import ssrf
from kameng.core.ssrf import UnsafeUrlError, safe_post, url_target_check
from tests.resellers.notify_support import PUBLIC_ADDRESS, Receiver, receiver

__all__ = ["receiver"]


@pytest.mark.parametrize(("url", "code"), [
    ("http://hooks.example.com/cb", "url_not_https"),
    ("ftp://hooks.example.com/cb", "url_not_https"),
    ("https://user:pw@hooks.example.com/cb", "url_has_credentials"),
    ("https:///cb", "url_invalid"),
    ("https://hooks.example.com:99999/cb", "url_invalid"),
    ("https://127.0.0.1/cb", "url_private_target"),
    ("https://127.8.9.10/cb", "url_private_target"),
    ("https://10.0.0.1/cb", "url_private_target"),
    ("https://172.16.5.4/cb", "url_private_target"),
    ("https://192.168.1.1/cb", "url_private_target"),
    ("https://100.64.0.1/cb", "url_private_target"),
    ("https://169.254.169.254/latest/meta-data/", "url_private_target"),
    ("https://224.0.0.1/cb", "url_private_target"),
    ("https://240.0.0.1/cb", "url_private_target"),
    ("https://255.255.255.255/cb", "url_private_target"),
    ("https://0.0.0.0/cb", "url_private_target"),
    ("https://[::]/cb", "url_private_target"),
    ("https://[::1]/cb", "url_private_target"),
    ("https://[fe80::1]/cb", "url_private_target"),
    ("https://[fc00::1]/cb", "url_private_target"),
    ("https://[ff02::1]/cb", "url_private_target"),
    ("https://[::ffff:127.0.0.1]/cb", "url_private_target"),
    ("https://[::ffff:10.0.0.1]/cb", "url_private_target"),
    ("https://[64:ff9b::a9fe:a9fe]/cb", "url_private_target"),
    ("https://[2002:7f00:1::]/cb", "url_private_target"),
    ("https://2130706433/cb", "url_numeric_host"),
    ("https://0177.0.0.1/cb", "url_numeric_host"),
    ("https://0x7f.0.0.1/cb", "url_numeric_host"),
    ("https://0x7f000001/cb", "url_numeric_host"),
    ("https://127.1/cb", "url_numeric_host"),
    ("https://nowhere.example.net/cb", "url_unresolvable"),
])
def test_refused(url: str, code: str, receiver: Receiver) -> None:
    with pytest.raises(UnsafeUrlError) as refused:
        url_target_check(url, allow_private=False)
    assert refused.value.code == code


@pytest.mark.parametrize("addresses", [["10.0.0.5"], ["127.0.0.1"], ["::1"], ["::ffff:192.168.0.1"],
                                       [PUBLIC_ADDRESS, "192.168.0.7"], ["0.0.0.0"]])
def test_names_resolving_inside_are_refused(addresses: list[str], receiver: Receiver) -> None:
    receiver.addresses["inside.example.com"] = addresses
    with pytest.raises(UnsafeUrlError) as refused:
        url_target_check("https://inside.example.com/cb", allow_private=False)
    assert refused.value.code == "url_private_target"


def test_public_target_is_pinned_to_the_address_checked(receiver: Receiver) -> None:
    target = url_target_check("https://Hooks.Example.com:8443/a/b?x=1&y=2", allow_private=False)

    assert (target.host, target.port, target.address) == ("hooks.example.com", 8443, PUBLIC_ADDRESS)
    assert target.path_with_query == "/a/b?x=1&y=2"
    assert target.pinned_url == f"https://{PUBLIC_ADDRESS}:8443/a/b?x=1&y=2"
    assert target.host_header == "hooks.example.com:8443"


def test_rebinding_cannot_change_the_address_after_the_check(receiver: Receiver) -> None:
    target = url_target_check("https://hooks.example.com/cb", allow_private=False)
    receiver.addresses["hooks.example.com"] = ["127.0.0.1"]  # the name now points inside

    safe_post(target, content=b"{}", headers={})

    assert receiver.resolved == ["hooks.example.com"]  # resolved once, at the check
    assert receiver.requests[0].url.host == PUBLIC_ADDRESS


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.script.append(lambda _request: httpx.Response(302, headers={"Location": "http://127.0.0.1/"}))
    target = url_target_check("https://hooks.example.com/cb", allow_private=False)

    response = safe_post(target, content=b"{}", headers={})

    assert response.status_code == 302
    assert len(receiver.requests) == 1


def test_private_targets_and_http_when_allowed(receiver: Receiver) -> None:
    receiver.addresses["dev.local"] = ["127.0.0.1"]
    target = url_target_check("http://dev.local:8000/cb", allow_private=True)
    assert (target.scheme, target.address, target.host_header) == ("http", "127.0.0.1", "dev.local:8000")


def test_the_setting_decides_by_default(receiver: Receiver, settings: pytest.FixtureRequest) -> None:
    settings.KAMENG_NOTIFY_ALLOW_PRIVATE = False  # type: ignore[attr-defined]
    with pytest.raises(UnsafeUrlError):
        url_target_check("https://127.0.0.1/cb")
    settings.KAMENG_NOTIFY_ALLOW_PRIVATE = True  # type: ignore[attr-defined]
    assert url_target_check("https://127.0.0.1/cb").address == "127.0.0.1"


class _Echo(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append((self.headers.get("Host") or "", self.rfile.read(length).decode()))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def echo_server() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_real_connection_goes_to_the_checked_address_with_the_name_as_host(
        echo_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def resolve(host: str, port: int, *_args: object, **_kwargs: object) -> list[tuple[object, ...]]:
        calls.append(host)
        return [(2, 1, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(ssrf, "resolve", resolve)
    target = url_target_check(f"http://hooks.internal.test:{echo_server}/cb", allow_private=True)

    response = safe_post(target, content=b'{"a":1}', headers={"Content-Type": "application/json"})

    assert response.status_code == 204
    assert calls == ["hooks.internal.test"]
    assert _Echo.seen[-1] == (f"hooks.internal.test:{echo_server}", '{"a":1}')
