"""The embedded database and var/ are readable by the service's own user only (they were created 0644 / 0755)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kameng import demo
from kameng.core.files import private_directory_ensure, private_file_ensure

ROOT = Path(__file__).resolve().parent.parent.parent


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("usual_umask")
def test_private_file_is_created_owner_only_and_an_existing_one_tightened(tmp_path: Path) -> None:
    created = tmp_path / "new" / "kameng.sqlite3"
    existing = tmp_path / "old.sqlite3"
    existing.write_bytes(b"data")
    existing.chmod(0o644)

    private_file_ensure(created)
    private_file_ensure(existing)

    assert (_mode(created), created.read_bytes()) == (0o600, b"")
    assert (_mode(existing), existing.read_bytes()) == (0o600, b"data")


@pytest.mark.usefixtures("usual_umask")
def test_private_directory_is_created_owner_only_and_an_existing_one_tightened(tmp_path: Path) -> None:
    existing = tmp_path / "var"
    existing.mkdir(mode=0o755)

    private_directory_ensure(tmp_path / "fresh" / "var")
    private_directory_ensure(existing)

    assert _mode(tmp_path / "fresh" / "var") == 0o700
    assert _mode(existing) == 0o700


def test_settings_create_the_sqlite_database_and_var_owner_only(tmp_path: Path) -> None:
    # A process of its own: settings are read once per process, and this one's are the test settings.
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "KAMENG_")) and key != "DATABASE_URL"}  # the default: var/kameng.sqlite3
    env.update({"DJANGO_SETTINGS_MODULE": "kameng.settings.base", "KAMENG_IGNORE_DOTENV": "1", "DEBUG": "1",
                "KAMENG_VAR_DIR": str(tmp_path / "var"), "PYTHONPATH": str(ROOT)})
    code = ("import os; os.umask(0o022); import django; django.setup(); "
            "from django.db import connection; connection.ensure_connection(); "
            "connection.cursor().execute('CREATE TABLE t (x int)')")

    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)

    assert _mode(tmp_path / "var") == 0o700
    assert _mode(tmp_path / "var" / "kameng.sqlite3") == 0o600


def test_demo_runs_its_processes_with_an_owner_only_umask(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[int] = []

    def first_step(_title: str, _args: list[str], _env: dict[str, str]) -> str:
        umask = os.umask(0o022)
        os.umask(umask)
        seen.append(umask)
        raise SystemExit(0)

    monkeypatch.setenv("KAMENG_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(demo, "env_file_ensure", lambda *_args, **_kwargs: [])
    monkeypatch.setattr(demo, "_port_is_free", lambda *_args: True)
    monkeypatch.setattr(demo, "_run_step", first_step)
    previous = os.umask(0o022)
    try:
        with pytest.raises(SystemExit):
            demo.main(["--port", "8999", "--no-seed"])
    finally:
        os.umask(previous)

    assert seen == [0o077]
    assert _mode(tmp_path / "var") == 0o700
