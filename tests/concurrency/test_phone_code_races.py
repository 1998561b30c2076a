"""SMS codes under concurrent requests on PostgreSQL: a code logs in once, wrong tries are all counted, and a number
that logs in twice at once gets one account."""

from __future__ import annotations

import pytest

from kameng.accounts.models import PhoneCode, User
from kameng.accounts.phone_login import phone_code_send, phone_login_with_code
from kameng.core.errors import ApplicationError
from tests.accounts.phone_support import RecordingSender, other_code, recording_sender_install
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PHONE = "13812345678"


@pytest.fixture
def sender(monkeypatch: pytest.MonkeyPatch) -> RecordingSender:
    requires_postgresql()
    return recording_sender_install(monkeypatch)


def test_one_code_used_by_eight_requests_at_once_logs_in_once(sender: RecordingSender) -> None:
    phone_code_send(phone=PHONE)
    code = sender.last_code

    outcomes = run_in_threads(8, lambda index: phone_login_with_code(phone=PHONE, code=code))

    assert unexpected(outcomes, ApplicationError) == []
    logged_in = [outcome for outcome in outcomes if outcome.error is None]
    assert len(logged_in) == 1
    assert {outcome.error.code for outcome in outcomes if isinstance(outcome.error, ApplicationError)} == {
        "invalid_code"}
    assert User.objects.count() == 1


def test_wrong_codes_at_once_are_all_counted(sender: RecordingSender) -> None:
    phone_code_send(phone=PHONE)
    wrong = other_code(sender.last_code)

    outcomes = run_in_threads(8, lambda index: phone_login_with_code(phone=PHONE, code=wrong))

    assert unexpected(outcomes, ApplicationError) == []
    codes = sorted(outcome.error.code for outcome in outcomes if isinstance(outcome.error, ApplicationError))
    assert codes == ["code_dead"] + ["invalid_code"] * 7
    assert PhoneCode.objects.get().attempts == 5  # the cap, not one more: the dead code counts nothing
    with pytest.raises(ApplicationError):
        phone_login_with_code(phone=PHONE, code=sender.last_code)


def test_a_new_number_logging_in_twice_at_once_gets_one_account() -> None:
    requires_postgresql()
    from kameng.accounts.phone_login import phone_login_with_onetap
    from kameng.simulators.onetap import simulated_onetap_token

    tokens = [simulated_onetap_token(phone=PHONE) for _ in range(6)]

    outcomes = run_in_threads(6, lambda index: phone_login_with_onetap(token=tokens[index]))

    assert unexpected(outcomes) == []
    results = [outcome.value for outcome in outcomes if outcome.value is not None]
    assert len({result.user.pk for result in results}) == 1
    assert sum(result.created for result in results) == 1
    assert User.objects.count() == 1
