"""The Celery worker's start and stop, for the direct top-up dispatcher: every worker process that runs tasks hosts
one (kameng.suppliers.dispatch: its event loop, its two database threads and, in "poll" mode, its due poller).

Threads must start in the process that runs the tasks: after the fork in a prefork worker (`worker_process_init`, in
each child), in the worker's own process for the threads and solo pools (`worker_ready`; the prefork parent runs no
task and starts nothing). On the way out the attempts in flight are written before the process ends; one killed
instead leaves them RECORDED or UNKNOWN for the sweeper, never submitted twice.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_ready, worker_shutdown

from kameng.suppliers.dispatch import dispatcher_host_start, dispatcher_host_stop

_forks: dict[str, bool] = {}


def _is_prefork(worker: Any) -> bool:
    pool = getattr(worker, "pool_cls", None)
    name = pool if isinstance(pool, str) else getattr(pool, "__module__", "")
    return "prefork" in str(name)


@worker_init.connect
def _remember_pool(sender: Any = None, **_kwargs: object) -> None:
    _forks["prefork"] = _is_prefork(sender)


@worker_process_init.connect
def _child_started(**_kwargs: object) -> None:
    dispatcher_host_start()


@worker_ready.connect
def _worker_ready(**_kwargs: object) -> None:
    if not _forks.get("prefork", False):
        dispatcher_host_start()


@worker_process_shutdown.connect
def _child_stopping(**_kwargs: object) -> None:
    dispatcher_host_stop()


@worker_shutdown.connect
def _worker_stopping(**_kwargs: object) -> None:
    if not _forks.get("prefork", False):
        dispatcher_host_stop()
