from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F

from kameng.ledger.models import Account, Entry
from kameng.ledger.selectors import ledger_problems
from kameng.ledger.services import wallet_account_id
from tests.factories import UserFactory, fund_wallet

pytestmark = pytest.mark.django_db


# `manage.py` turns a CommandError into `sys.exit(error.returncode)`; returning normally is exit status 0.
# (Running it through execute_from_command_line would close the test's database connection.)


def test_ledger_check_passes_on_a_clean_ledger() -> None:
    user = UserFactory.create()
    fund_wallet(user, "25.00")
    stdout, stderr = StringIO(), StringIO()

    call_command("ledger_check", stdout=stdout, stderr=stderr)

    assert "ledger OK: 1 journals, 2 entries, 2 accounts balance" in stdout.getvalue()
    assert stderr.getvalue() == ""


def test_ledger_check_passes_on_an_empty_ledger() -> None:
    stdout = StringIO()

    call_command("ledger_check", stdout=stdout)

    assert "ledger OK: 0 journals, 0 entries, 0 accounts balance" in stdout.getvalue()


def test_ledger_check_fails_on_a_corrupted_cached_balance() -> None:
    user = UserFactory.create()
    fund_wallet(user, "25.00")
    wallet = wallet_account_id(user_id=user.pk)
    Account.objects.filter(pk=wallet).update(balance=F("balance") + Decimal("1.00"))
    stdout, stderr = StringIO(), StringIO()
    try:
        with pytest.raises(CommandError) as error:
            call_command("ledger_check", stdout=stdout, stderr=stderr)

        assert error.value.returncode == 1
        assert str(error.value) == "ledger check FAILED: 1 problem(s)"
        assert stdout.getvalue() == ""
        assert stderr.getvalue().splitlines() == [f"balance mismatch: wallet:{user.pk}: cached 26.00 ≠ entries 25.00"]
    finally:
        Account.objects.filter(pk=wallet).update(balance=Decimal("25.00"))


def test_ledger_check_fails_on_an_unbalanced_journal() -> None:
    user = UserFactory.create()
    fund_wallet(user, "25.00", reference="F1")
    wallet = wallet_account_id(user_id=user.pk)
    leg = Entry.objects.get(account_id=wallet)
    Entry.objects.filter(pk=leg.pk).update(amount=Decimal("24.00"))
    stderr = StringIO()
    try:
        with pytest.raises(CommandError, match=r"ledger check FAILED: 2 problem\(s\)"):
            call_command("ledger_check", stderr=stderr)

        lines = stderr.getvalue().splitlines()
        assert f"unbalanced journal: #{leg.journal_id} adjustment F1: D 25.00 ≠ C 24.00" in lines
        assert f"balance mismatch: wallet:{user.pk}: cached 25.00 ≠ entries 24.00" in lines
    finally:
        Entry.objects.filter(pk=leg.pk).update(amount=Decimal("25.00"))
    assert ledger_problems() == []
