"""A stand-in for `time.monotonic` in the modules under test: the tests move it by hand."""

from __future__ import annotations

from types import ModuleType

import pytest


class MonotonicClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def monotonic_clock_install(monkeypatch: pytest.MonkeyPatch, *modules: ModuleType) -> MonotonicClock:
    """Each module's `time.monotonic` reads the returned clock (the modules share the `time` module, so the first
    patch serves all; naming them says which code the test moves)."""
    clock = MonotonicClock()
    for module in modules:
        monkeypatch.setattr(module.time, "monotonic", clock)
    return clock
