"""Run one callable in many real threads at once, each on its own database connection.

A barrier releases every thread together so they really race; each thread closes its connection when done, so a
`transaction=True` test leaves no session behind for the flush that follows it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import pytest
from django.db import connection

T = TypeVar("T")
JOIN_TIMEOUT_SECONDS = 120


@dataclass
class Outcome(Generic[T]):
    index: int
    value: T | None = None
    error: BaseException | None = None


def requires_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrency tests need PostgreSQL (SQLite serialises writers and ignores row locks)")


def run_in_threads(count: int, target: Callable[[int], T]) -> list[Outcome[T]]:
    """Call `target(index)` in `count` threads released together; return every outcome, in index order."""
    barrier = threading.Barrier(count)
    outcomes = [Outcome[T](index=index) for index in range(count)]

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT_SECONDS)
            outcomes[index].value = target(index)
        except BaseException as error:  # every failure is reported to the test, none is lost
            outcomes[index].error = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(index,), name=f"race-{index}") for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT_SECONDS)
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads still running after {JOIN_TIMEOUT_SECONDS}s: {stuck}"
    return outcomes


def unexpected(outcomes: list[Outcome[T]], *allowed: type[BaseException]) -> list[BaseException]:
    """Errors that are none of the allowed types (a test asserts this list is empty)."""
    return [o.error for o in outcomes if o.error is not None and not isinstance(o.error, allowed)]
