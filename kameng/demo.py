"""`python -m kameng.demo` (what `make demo` runs): the whole platform on one machine, nothing else to install.

On first run it writes development settings into `.env` (random secret and encryption keys; the file is
gitignored and kept on later runs), migrates the embedded SQLite database, seeds the demo shop, then supervises
four processes — the web server, a Celery worker and Celery beat (on the filesystem broker under var/), and the
supplier simulator (kameng.simulators.supplier: the 福禄-protocol upstream the two demo suppliers are reached through,
on the web port + 1 unless --supplier-port says otherwise) — until Ctrl-C, SIGTERM, or one of them dying, which stops
the others.

This module runs before Django is configured and imports nothing of Django: every Django step runs in a child
process, so each one reads the `.env` this module has just written.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO

from kameng.core.files import private_directory_ensure

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_FILE = BASE_DIR / ".env"
WEB_START_TIMEOUT_SECONDS = 60
BACKGROUND_READY_TIMEOUT_SECONDS = 30
STOP_GRACE_SECONDS = 10
# Whatever the demo and its children create (the database, queued tasks, uploads, the beat schedule) is the owner's
# alone: they are all under var/, which holds card keys and personal data.
DEMO_UMASK = 0o077
# The simulator's start-up line (kameng.simulators.supplier.__main__.READY_LINE; not imported: the demo imports
# nothing of the simulators).
SUPPLIER_READY_MARKER = "supplier simulator ready"
SUPPLIER_CONFIG_FILE = "supplier-simulator.json"
# The demo's upstream: a little latency, a few seconds in 充值中, then a callback; no failures unless asked for
# (POST /admin/knobs on the simulator).
SUPPLIER_DEMO_KNOBS = {"latency_ms": 150, "process_ms": 3000, "callback_retries": 8, "callback_retry_ms": 2000}


_output_lock = threading.Lock()


def _say(text: str, *, error: bool = False, end: str = "\n") -> None:
    """One line of the demo's own output, never interleaved with the children's lines."""
    stream = sys.stderr if error else sys.stdout
    with _output_lock:
        stream.write(text + end)
        stream.flush()


def _var_dir() -> Path:
    return Path(os.environ.get("KAMENG_VAR_DIR", BASE_DIR / "var"))


def _random_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _read_env_keys(path: Path) -> set[str]:
    keys = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, _ = line.strip().removeprefix("export ").partition("=")
        if sep and not line.lstrip().startswith("#"):
            keys.add(name.strip())
    return keys


def env_file_ensure(path: Path, *, site_url: str) -> list[str]:
    """Write the development settings the demo needs, keeping every value already there. Returns what was added."""
    wanted = {
        "DEBUG": "1",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "KAMENG_ENCRYPTION_KEYS": f"dev1:{_random_key()}",
        "KAMENG_BLIND_INDEX_KEY": _random_key(),
        "SITE_URL": site_url,
        "KAMENG_SIMULATORS_ENABLED": "1",
    }
    existing = _read_env_keys(path) if path.exists() else set()
    missing = [name for name in wanted if name not in existing]
    if not missing:
        return []
    lines = []
    if not path.exists():
        lines.append(f"# Written by `make demo` (kameng.demo) on {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC.")
        lines.append("# Development settings with random keys: never commit this file, never use it in production.")
        lines.append("# Losing KAMENG_ENCRYPTION_KEYS / KAMENG_BLIND_INDEX_KEY makes the stored card keys unreadable.")
    lines.extend(f"{name}={wanted[name]}" for name in missing)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    path.write_text(text + "\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return missing


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def _child_env(site_url: str, supplier_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "kameng.settings.base")
    # The process environment wins over .env: the channel's gateway URL follows the port actually used.
    env["SITE_URL"] = site_url
    # seed_demo points the demo suppliers' connectors at the supplier simulator.
    env["KAMENG_SUPPLIER_SIM_URL"] = supplier_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run_step(title: str, args: list[str], env: dict[str, str]) -> str:
    _say(f"==> {title}")
    result = subprocess.run(args, cwd=BASE_DIR, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"kameng demo: `{' '.join(args[1:])}` failed with exit code {result.returncode}")
    return result.stdout


@dataclass
class Child:
    name: str
    args: list[str]
    ready_marker: str = ""  # a line containing this means the process is up (the web is checked over HTTP)
    process: subprocess.Popen[str] | None = None
    reader: threading.Thread | None = field(default=None, repr=False)
    ready: threading.Event = field(default_factory=threading.Event, repr=False)

    def start(self, env: dict[str, str]) -> None:
        # A session of its own: a terminal's Ctrl-C reaches only us, and we stop the children in order (a second
        # SIGINT would make the Celery worker abandon its tasks instead of finishing them).
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            self.args, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            bufsize=1, start_new_session=True,
        )
        assert self.process.stdout is not None
        self.reader = threading.Thread(target=self._relay, args=(self.process.stdout,), daemon=True)
        self.reader.start()

    def _relay(self, stream: IO[str]) -> None:
        """Copy the child's output to ours, each line prefixed with its name; notice its ready line."""
        for line in stream:
            _say(f"{self.name:>8} | {line}", end="")
            if self.ready_marker and self.ready_marker in line:
                self.ready.set()

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)


def _wait_for_web(url: str, web: Child) -> bool:
    deadline = time.monotonic() + WEB_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and not _stop_requested:
        if web.process is None or web.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own local URL
                if response.status < 500:
                    return True
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False


def _wait_for_ready(children: list[Child]) -> None:
    """Let the worker and beat finish their start-up chatter so the banner is the last thing on screen."""
    deadline = time.monotonic() + BACKGROUND_READY_TIMEOUT_SECONDS
    for child in children:
        while not child.ready.is_set() and time.monotonic() < deadline and not _stop_requested:
            if child.process is not None and child.process.poll() is not None:
                return
            child.ready.wait(0.2)
        if not child.ready.is_set():
            _say(f"kameng demo: the {child.name} has not reported ready yet; see its output above.", error=True)


def supplier_config_write(path: Path, seed: dict[str, object]) -> None:
    """The simulator's merchants (secrets included: the file is the owner's alone, like everything under var/)."""
    simulator = seed.get("supplier_simulator")
    assert isinstance(simulator, dict)
    config = {"merchants": simulator.get("merchants", []), "knobs": SUPPLIER_DEMO_KNOBS}
    path.write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
    path.chmod(0o600)


def _supplier_lines(supplier_url: str, seed: dict[str, object]) -> list[str]:
    suppliers = seed.get("suppliers", [])
    assert isinstance(suppliers, list)
    return [
        f"  supplier simulator (福禄 protocol): gateway {supplier_url}/api/getway",
        f"      state {supplier_url}/admin/state   knobs: POST {supplier_url}/admin/knobs "
        "{\"fail_rate\": 0.2, \"unknown_rate\": 0.1, …}",
        *(f"      supplier {supplier.get('name')} (merchant {supplier.get('app_key')}, login "
          f"{supplier.get('username')}): callbacks to {supplier.get('notify_url')}" for supplier in suppliers),
    ]


def _openapi_lines(site_url: str, seed: dict[str, object]) -> list[str]:
    """The demo reseller's Open API key, each variable on a line of its own (examples/openapi_client.py reads
    them): demo values only."""
    openapi = seed.get("openapi")
    if not isinstance(openapi, dict):
        return []
    return [
        f"  Open API v1 (代理开放接口): {site_url}/openapi/v1/docs — try: python examples/openapi_client.py products",
        f"KAMENG_DEMO_OPENAPI_KEY={openapi.get('key')}",
        f"KAMENG_DEMO_OPENAPI_SECRET={openapi.get('secret')}",
        f"KAMENG_OPENAPI_BASE_URL={site_url}",
    ]


def _login_lines(login: dict[str, str]) -> list[str]:
    lines = [f"  login ({login['role']}): {login['username']} / {login['password']}"]
    if login.get("totp_secret"):  # the demo admin's 2FA (kameng/accounts/staff_otp.py)
        lines.append(f"      then the 2FA code (两步验证): run `python -m kameng.demo totp` for the current one, "
                     f"or add the secret {login['totp_secret']} to an authenticator app")
    return lines


def _totp(argv: list[str]) -> int:
    """`python -m kameng.demo totp [username]`: the demo admin's current 2FA code, from the demo's database."""
    env = _child_env(os.environ.get("SITE_URL", "http://127.0.0.1:8000"), "")
    username = argv[0] if argv else "admin"
    result = subprocess.run([sys.executable, "manage.py", "staff_totp_code", username],  # noqa: S603
                            cwd=BASE_DIR, env=env, check=False)
    return result.returncode


def _banner(site_url: str, seed: dict[str, object], supplier_url: str) -> str:
    logins = seed.get("logins", [])
    channels = seed.get("channels", [])
    assert isinstance(logins, list)
    assert isinstance(channels, list)
    channel_lines = []
    for channel in channels:
        channel_lines += [
            f"  {channel.get('name')} — channel '{channel.get('code')}' ({channel.get('kind')}):",
            f"      gateway {channel.get('gateway_url')}   merchant id {channel.get('merchant_id')}",
            f"      key {channel.get('demo_key')}   notify URL {channel.get('notify_url')}",
        ]
    lines = [
        "",
        "=" * 78,
        f"  kameng demo is running:  {site_url}/",
        f"  admin (后台):             {site_url}/admin/",
        *(line for login in logins for line in _login_lines(login)),
        f"  phone login (短信登录):    {site_url}/login/?tab=sms — any mainland number, then 获取验证码;",
        "      the console SMS backend prints the code here, on a `web | … kameng.sms 短信验证码 123456 …` line",
        "      (an unknown number registers on its first login)",
        f"  one-tap (一键登录):        {site_url}/login/?tab=onetap — the simulated carrier lets you pick the number",
        "  simulated payment channels (the simulators answer under /sim/):",
        *channel_lines,
        *_supplier_lines(supplier_url, seed),
        *_openapi_lines(site_url, seed),
        "  web + Celery worker + Celery beat + supplier simulator are running; Ctrl-C stops them all.",
        "=" * 78,
        "",
    ]
    return "\n".join(lines)


_stop_requested: list[int] = []


def _how_it_ended(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


def _request_stop(signum: int, frame: FrameType | None) -> None:
    _stop_requested.append(signum)


def _supervise(children: list[Child]) -> int:
    """Wait until a stop is requested or a child dies; then stop them all. Returns the demo's exit status."""
    exit_code = 0
    while not _stop_requested:
        dead = [child for child in children if child.process is not None and child.process.poll() is not None]
        if dead:
            for child in dead:
                assert child.process is not None
                _say(f"\nkameng demo: the {child.name} process {_how_it_ended(child.process.returncode)}; "
                     "stopping the others.", error=True)
            exit_code = 1
            break
        time.sleep(0.3)
    if _stop_requested:
        name = signal.Signals(_stop_requested[0]).name
        _say(f"\nkameng demo: {name} received, stopping {', '.join(child.name for child in children)}…")
    _stop(children)
    return exit_code


def _stop(children: list[Child]) -> None:
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _say(f"kameng demo: {child.name} did not stop in {STOP_GRACE_SECONDS}s, killing it", error=True)
            child.signal(signal.SIGKILL)
            child.process.wait()
    for child in children:
        if child.reader is not None:
            child.reader.join(timeout=2)
    _say("kameng demo: stopped.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kameng.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address the web server listens on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="web server port (default 8000)")
    parser.add_argument("--supplier-port", type=int, default=None,
                        help="supplier simulator port on 127.0.0.1 (default: the web port + 1)")
    parser.add_argument("--no-seed", action="store_true", help="skip seeding the demo data")
    options = parser.parse_args(argv)
    supplier_port = options.supplier_port or options.port + 1
    supplier_url = f"http://127.0.0.1:{supplier_port}"

    browse_host = "127.0.0.1" if options.host in ("0.0.0.0", "::", "") else options.host  # noqa: S104
    site_url = f"http://{browse_host}:{options.port}"
    if not _port_is_free(options.host, options.port):
        raise SystemExit(f"kameng demo: {options.host}:{options.port} is already in use; "
                         f"stop whatever listens there or choose another port with --port")
    if not _port_is_free("127.0.0.1", supplier_port):
        raise SystemExit(f"kameng demo: 127.0.0.1:{supplier_port} (the supplier simulator) is already in use; "
                         f"choose another port with --supplier-port")

    added = env_file_ensure(ENV_FILE, site_url=site_url)
    if added:
        _say(f"==> wrote {', '.join(added)} to {ENV_FILE} (development only, gitignored)")
    else:
        _say(f"==> using the settings in {ENV_FILE}")

    os.umask(DEMO_UMASK)  # inherited by every child process
    env = _child_env(site_url, supplier_url)
    python = sys.executable
    var_dir = _var_dir()
    private_directory_ensure(var_dir)
    _run_step("migrating the database", [python, "manage.py", "migrate", "--noinput"], env)
    seed: dict[str, object] = {}
    if not options.no_seed:
        seed = json.loads(_run_step("seeding the demo shop", [python, "manage.py", "seed_demo", "--json"], env))
        summary = seed.get("summary", {})
        assert isinstance(summary, dict)
        _say(f"    {summary.get('products')} products, {summary.get('skus')} SKUs, "
             f"{summary.get('card_keys')} encrypted card keys ({summary.get('card_keys_added')} added now), "
             f"{summary.get('suppliers')} suppliers")
        supplier_config_write(var_dir / SUPPLIER_CONFIG_FILE, seed)
    supplier_args = [python, "-m", "kameng.simulators.supplier", "--host", "127.0.0.1", "--port", str(supplier_port)]
    if (var_dir / SUPPLIER_CONFIG_FILE).exists():  # written by this or an earlier seeding
        supplier_args += ["--config", str(var_dir / SUPPLIER_CONFIG_FILE)]

    children = [
        Child("web", [python, "manage.py", "runserver", "--noreload", f"{options.host}:{options.port}"]),
        Child("worker", [python, "-m", "celery", "-A", "kameng", "worker", "--pool", "threads",
                         "--concurrency", "4", "--loglevel", "INFO", "--hostname", "demo@%h"],
              ready_marker=" ready."),
        Child("beat", [python, "-m", "celery", "-A", "kameng", "beat", "--loglevel", "INFO",
                       "--schedule", str(var_dir / "celerybeat-schedule")],
              ready_marker="beat: Starting"),
        Child("supplier", supplier_args, ready_marker=SUPPLIER_READY_MARKER),
    ]
    # From here on a signal must never leave the children behind: handlers only record it, the loop acts on it.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _request_stop)
    _say("==> starting web, worker, beat and the supplier simulator")
    for child in children:
        child.start(env)
    if not _wait_for_web(site_url + "/", children[0]):
        if not _stop_requested:
            _say("kameng demo: the web server did not answer; see its output above.", error=True)
        return _supervise(children) or 1
    _wait_for_ready(children[1:])
    if seed:
        _say(_banner(site_url, seed, supplier_url))
    else:
        _say(f"\n  kameng demo is running: {site_url}/  (Ctrl-C stops it)\n")
    return _supervise(children)


if __name__ == "__main__":
    sys.exit(_totp(sys.argv[2:]) if sys.argv[1:2] == ["totp"] else main())
