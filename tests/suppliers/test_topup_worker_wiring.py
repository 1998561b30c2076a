"""How production runs the top-up pipeline (kameng.suppliers.worker, kameng.suppliers.dispatch): every Celery worker
process hosts a dispatcher — attempts routed there are submitted there, without a broker hop — and, with the
callbacks polled (the default), a due poller; a web process hands its attempts to a worker by task."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from kameng.suppliers import dispatch, tasks, worker
from kameng.suppliers.topup import Via


@pytest.fixture
def hosting(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """What the dispatcher host did: pollers started, attempts handed over, stops."""
    seen: list[tuple[str, Any]] = []
    monkeypatch.setattr(dispatch, "due_poller_start", lambda **kwargs: seen.append(("poller", None)))
    monkeypatch.setattr(dispatch, "dispatcher_stop", lambda: seen.append(("stop", None)))
    def run(*, attempt_ids: list[int], via: Via) -> list[Any]:
        seen.append(("run", (list(attempt_ids), via)))
        return []

    monkeypatch.setattr(dispatch, "attempts_run", run)
    yield seen
    dispatch._host.clear()


def test_production_settings_poll_the_callbacks() -> None:
    from kameng.settings import base

    assert base.KAMENG_TOPUP_CALLBACK_PROMPT == "poll"
    assert base.KAMENG_TOPUP_DUE_POLL_SECONDS == 0.2
    from kameng.celery import app

    assert app.conf.beat_schedule["suppliers-sweep-topups"]["schedule"] == 10.0


def test_a_worker_starting_connects_the_dispatcher_hosts_signals() -> None:
    from celery.signals import worker_process_init, worker_ready

    from kameng.celery import app

    assert "kameng.suppliers.worker" in app.conf.imports  # imported by the worker at start, before it forks
    app.loader.import_default_modules()

    def receivers(signal: Any) -> list[Any]:
        return [receiver() if callable(receiver) and not hasattr(receiver, "__name__") else receiver
                for *_, receiver in signal.receivers]

    assert worker._child_started in receivers(worker_process_init)
    assert worker._worker_ready in receivers(worker_ready)


def test_a_prefork_worker_hosts_a_dispatcher_in_each_child_not_in_the_parent(
        hosting: list[tuple[str, Any]], settings: Settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.KAMENG_TOPUP_CALLBACK_PROMPT = "poll"
    worker._remember_pool(sender=SimpleNamespace(pool_cls="celery.concurrency.prefork:TaskPool"))
    worker._worker_ready()  # the parent: runs no task
    assert hosting == []
    assert not dispatch._host.is_set()

    worker._child_started()  # after the fork, in the child

    assert hosting == [("poller", None)]
    dispatch.topup_dispatch(attempt_ids=[5, 6])  # routed in this process: submitted here, no task
    assert hosting[-1] == ("run", ([5, 6], Via.SUBMIT))
    worker._child_stopping()
    assert hosting[-1] == ("stop", None)
    assert not dispatch._host.is_set()


def test_a_threads_worker_hosts_one_dispatcher_in_its_process(hosting: list[tuple[str, Any]],
                                                              settings: Settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.KAMENG_TOPUP_CALLBACK_PROMPT = "task"
    from celery.concurrency.thread import TaskPool

    worker._remember_pool(sender=SimpleNamespace(pool_cls=TaskPool))
    worker._worker_ready()
    assert dispatch._host.is_set()
    assert hosting == []  # "task" mode: the callbacks enqueue their queries, nothing polls
    worker._worker_stopping()
    assert hosting == [("stop", None)]


def test_a_web_process_hands_its_attempts_to_a_worker_by_task(hosting: list[tuple[str, Any]], settings: Settings,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued: list[list[int]] = []
    monkeypatch.setattr(tasks.submit_topups, "delay", queued.append)

    dispatch.topup_dispatch(attempt_ids=[9])

    assert queued == [[9]]
    assert hosting == []
