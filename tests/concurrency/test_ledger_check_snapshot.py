"""ledger_check on a live database: a journal committed while the check runs is not a mismatch."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from kameng.ledger import selectors
from kameng.ledger.models import Account
from tests.concurrency.threads import requires_postgresql
from tests.factories import UserFactory, fund_wallet


@pytest.mark.django_db(transaction=True)
def test_a_topup_committed_between_the_two_reads_of_the_check_is_not_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    requires_postgresql()
    user = UserFactory.create()
    fund_wallet(user, "10.00", reference="first")
    real_all: Callable[[], Any] = Account.objects.all

    def all_after_a_concurrent_topup() -> Any:
        # The check has summed the entries; a top-up commits on another connection before it reads the balances.
        def other_connection() -> None:
            try:
                fund_wallet(user, "5.00", reference="during-check")
            finally:
                connection.close()

        thread = threading.Thread(target=other_connection)
        thread.start()
        thread.join()
        return real_all()

    monkeypatch.setattr(Account.objects, "all", all_after_a_concurrent_topup)
    problems = selectors.ledger_problems()
    monkeypatch.undo()

    assert problems == []
    assert selectors.ledger_problems() == []  # and the top-up is there once the check looks again
    assert Account.objects.get(code=f"wallet:{user.pk}").balance == 15
