"""URLs that must not move with the request's script prefix.

A storefront request on a sub-site's path (`/s/<slug>/`, kameng.web.subsites) makes that path the script prefix,
so every link on its pages stays inside the sub-site. Addresses given to the outside world (a gateway's notify
URL, a supplier's callback URL) are the platform's and never change: they are built with `reverse_at_root`, which
reverses as the request did before a sub-site's prefix was put on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.urls import get_script_prefix, reverse, set_script_prefix

_root_prefix: ContextVar[str | None] = ContextVar("kameng_root_script_prefix", default=None)


@contextmanager
def script_prefix_within(prefix: str) -> Iterator[None]:
    """Make `prefix` the script prefix for the block (a sub-site's path), remembering and then restoring the one
    it replaces."""
    previous = get_script_prefix()
    token = _root_prefix.set(previous)
    set_script_prefix(prefix)
    try:
        yield
    finally:
        set_script_prefix(previous)
        _root_prefix.reset(token)


def reverse_at_root(viewname: str, *, args: Sequence[Any] | None = None) -> str:
    """reverse(), with the script prefix the request had before any sub-site's."""
    root = _root_prefix.get()
    if root is None:
        return reverse(viewname, args=args)
    current = get_script_prefix()
    set_script_prefix(root)
    try:
        return reverse(viewname, args=args)
    finally:
        set_script_prefix(current)
