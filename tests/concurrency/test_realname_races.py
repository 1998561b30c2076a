"""Real-name verification under races on PostgreSQL: one person verifies at most the allowed number of accounts,
and one account's simultaneous submissions ask the provider once."""

from __future__ import annotations

import time

import pytest
from pytest_django.fixtures import Settings

from kameng.accounts import verification
from kameng.accounts.models import RealName, RealNameStatus
from kameng.accounts.services import realname_verify
from kameng.accounts.verification import VerificationOutcome, VerificationResult
from kameng.core.errors import ApplicationError
from tests.accounts.ids import id_number
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NAME = "张小三"
NUMBER = id_number()


@pytest.fixture(autouse=True)
def provider_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call takes a moment, so that the racers are all between asking and recording at once."""
    requires_postgresql()
    calls: list[str] = []

    def verify(self: object, *, name: str, id_number: str) -> VerificationResult:
        calls.append(id_number)
        time.sleep(0.3)
        return VerificationResult(outcome=VerificationOutcome.MATCH, provider="local")

    monkeypatch.setattr(verification.LocalIdentityProvider, "verify", verify)
    return calls


@pytest.mark.parametrize("accounts_per_identity", [1, 2])
def test_one_person_verifies_no_more_accounts_than_allowed(settings: Settings, accounts_per_identity: int) -> None:
    settings.KAMENG_REALNAME_ACCOUNTS_PER_IDENTITY = accounts_per_identity
    users = [UserFactory.create().pk for _ in range(6)]

    outcomes = run_in_threads(6, lambda index: realname_verify(user_id=users[index], name=NAME, id_number=NUMBER))

    assert unexpected(outcomes, ApplicationError) == []
    refused = [outcome.error for outcome in outcomes if outcome.error is not None]
    assert [getattr(error, "code", None) for error in refused] == ["realname_id_number_taken"] * (
        6 - accounts_per_identity)
    verified = RealName.objects.filter(status=RealNameStatus.VERIFIED)
    assert sorted(slot or 0 for slot in verified.values_list("identity_slot", flat=True)) == list(
        range(1, accounts_per_identity + 1))
    rejected = RealName.objects.filter(status=RealNameStatus.REJECTED, rejection_code="id_number_taken")
    assert rejected.count() == 6 - accounts_per_identity
    assert list(rejected.values_list("name", "id_number", "id_number_index", "identity_slot").distinct()) == [
        (None, None, None, None)]


def test_one_account_submitting_at_once_asks_the_provider_once(provider_calls: list[str]) -> None:
    user = UserFactory.create()

    outcomes = run_in_threads(4, lambda index: realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER))

    assert unexpected(outcomes, ApplicationError) == []
    assert sum(outcome.error is None for outcome in outcomes) == 1
    assert {getattr(outcome.error, "code", None) for outcome in outcomes if outcome.error is not None} <= {
        "realname_in_progress", "realname_already_verified"}
    assert provider_calls == [NUMBER]
    row = RealName.objects.get(user=user)
    assert (row.status, row.attempts) == (RealNameStatus.VERIFIED, 1)
