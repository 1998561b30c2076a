from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_django.fixtures import Settings

from kameng.orders.group_commit import writer_stop
from tests.concurrency.threads import requires_postgresql


@pytest.fixture(params=["single", "group_commit"])
def checkout_path(request: pytest.FixtureRequest, settings: Settings) -> Iterator[str]:
    """A race run twice: each checkout in its own transaction, and through the group-commit writer.
    Modules opt in with `pytest.mark.usefixtures("checkout_path")`."""
    requires_postgresql()
    settings.KAMENG_CHECKOUT_GROUP_COMMIT = request.param == "group_commit"
    yield request.param
    writer_stop()
