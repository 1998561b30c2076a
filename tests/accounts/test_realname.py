"""Real-name verification (kameng.accounts.services.realname_verify and the selectors): storage, outcomes, limits."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from kameng.accounts import verification
from kameng.accounts.models import RealName, RealNameStatus, User
from kameng.accounts.selectors import buyer_age, identity_index_of, is_verified, realname_of, verified_name_of
from kameng.accounts.services import realname_reset, realname_verify
from kameng.accounts.verification import (
    IdentityProviderUnavailableError,
    VerificationOutcome,
    VerificationResult,
)
from kameng.core.errors import ApplicationError
from tests.accounts.ids import id_number
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NAME = "张小三"
NUMBER = id_number(born="20080229", sequence="123")  # 18 on 1 March 2026
MISMATCH = id_number(sequence="999")
NO_RECORD = id_number(sequence="998")
UNAVAILABLE = id_number(sequence="997")


def _refused(user: User, *, name: str = NAME, number: str = NUMBER) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        realname_verify(user_id=user.pk, name=name, id_number=number)
    return refused.value


def _row(user: User) -> RealName | None:
    return RealName.objects.filter(user=user).first()


# --- verified -----------------------------------------------------------------------------------------------------

def test_a_verified_real_name_is_stored_encrypted_with_a_blind_index() -> None:
    user = UserFactory.create()

    real_name = realname_verify(user_id=user.pk, name=" 张 小三 ", id_number=NUMBER.lower())

    stored = RealName.objects.get(user=user)
    assert stored.pk == real_name.pk
    assert stored.status == RealNameStatus.VERIFIED
    assert stored.name == NAME
    assert stored.id_number == NUMBER
    assert bytes(stored.id_number_index or b"") == identity_index_of(NUMBER)
    assert stored.identity_slot == 1
    assert stored.provider == "local"
    assert stored.verified_at is not None
    assert stored.attempts == 1
    assert stored.rejection_code == ""


def test_the_database_holds_no_plaintext_name_or_number() -> None:
    user = UserFactory.create()
    realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)

    with connection.cursor() as cursor:
        cursor.execute("SELECT name, id_number, id_number_index FROM accounts_realname WHERE user_id = %s", [user.pk])
        raw_name, raw_number, raw_index = (bytes(value) for value in cursor.fetchone())

    for raw in (raw_name, raw_number, raw_index):
        assert NAME.encode() not in raw
        assert NUMBER.encode() not in raw
        assert NUMBER[6:14].encode() not in raw  # not even the birth date
    assert len(raw_index) == 32


def test_the_masked_view_and_the_age_once_verified() -> None:
    user = UserFactory.create()
    realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)

    view = realname_of(user_id=user.pk)

    assert view.status == RealNameStatus.VERIFIED
    assert view.is_verified is True
    assert view.masked_name == "张*三"
    assert view.masked_id_number == NUMBER[:3] + "*" * 11 + NUMBER[-4:]
    assert view.attempts_left_today == 4
    assert is_verified(user_id=user.pk) is True
    assert verified_name_of(user_id=user.pk) == NAME
    assert buyer_age(user_id=user.pk, on=date(2026, 2, 28)) == 17
    assert buyer_age(user_id=user.pk, on=date(2026, 3, 1)) == 18
    assert buyer_age(user_id=user.pk, on=date(2028, 2, 29)) == 20


def test_a_two_character_name_is_masked_to_its_first() -> None:
    user = UserFactory.create()
    realname_verify(user_id=user.pk, name="张三", id_number=NUMBER)

    assert realname_of(user_id=user.pk).masked_name == "张*"


def test_an_account_never_verified_has_nothing() -> None:
    user = UserFactory.create()

    view = realname_of(user_id=user.pk)

    assert view.status == RealNameStatus.UNVERIFIED
    assert (view.is_verified, view.masked_name, view.masked_id_number) == (False, None, None)
    assert view.attempts_left_today == 5
    assert is_verified(user_id=user.pk) is False
    assert buyer_age(user_id=user.pk) is None
    assert verified_name_of(user_id=user.pk) is None
    assert RealName.objects.count() == 0


def test_verifying_again_once_verified_is_a_conflict() -> None:
    user = UserFactory.create()
    realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)

    refused = _refused(user, name="李四", number=id_number(sequence="124"))

    assert (refused.code, refused.status_code) == ("realname_already_verified", 409)
    assert RealName.objects.get(user=user).name == NAME


# --- refused before the provider -------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "number", "code"), [
    (NAME, NUMBER[:17] + ("0" if NUMBER[-1] != "0" else "1"), "id_number_checksum"),
    (NAME, id_number(born="20010229"), "id_number_birth_date"),
    (NAME, id_number(region="990101"), "id_number_region"),
    (NAME, "110105900307123", "id_number_legacy"),
    (NAME, "1101051990030712", "id_number_format"),
    ("Zhang San", NUMBER, "name_format"),
    ("张", NUMBER, "name_format"),
])
def test_bad_input_is_refused_without_an_attempt_or_a_row(name: str, number: str, code: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    user = UserFactory.create()
    monkeypatch.setattr(verification.LocalIdentityProvider, "verify", _never_called)

    refused = _refused(user, name=name, number=number)

    assert (refused.code, refused.status_code) == (code, 400)
    assert RealName.objects.count() == 0


def _never_called(*args: Any, **kwargs: Any) -> VerificationResult:
    raise AssertionError("the provider must not be asked")


# --- the provider's answers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("number", "code"), [(MISMATCH, "realname_mismatch"), (NO_RECORD, "realname_no_record")])
def test_a_refusal_by_the_provider_keeps_no_name_or_number(number: str, code: str) -> None:
    user = UserFactory.create()

    refused = _refused(user, number=number)

    assert (refused.code, refused.status_code) == (code, 400)
    row = RealName.objects.get(user=user)
    assert row.status == RealNameStatus.REJECTED
    assert row.rejection_code == code.removeprefix("realname_")
    assert (row.name, row.id_number, row.id_number_index, row.identity_slot, row.verified_at) == (
        None, None, None, None, None)
    assert row.attempts == 1
    assert realname_of(user_id=user.pk).status == RealNameStatus.REJECTED
    assert is_verified(user_id=user.pk) is False


def test_after_a_refusal_a_corrected_attempt_verifies() -> None:
    user = UserFactory.create()
    _refused(user, number=MISMATCH)

    realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)

    row = RealName.objects.get(user=user)
    assert (row.status, row.rejection_code, row.attempts) == (RealNameStatus.VERIFIED, "", 2)


def test_an_unavailable_provider_records_nothing_and_counts_no_attempt() -> None:
    user = UserFactory.create()

    refused = _refused(user, number=UNAVAILABLE)

    assert isinstance(refused, IdentityProviderUnavailableError)
    assert (refused.code, refused.status_code) == ("identity_provider_unavailable", 503)
    assert refused.extra == {"retryable": True, "retry_after": 30}
    row = RealName.objects.get(user=user)
    assert (row.status, row.attempts, row.name, row.id_number, row.pending_since) == (
        RealNameStatus.UNVERIFIED, 0, None, None, None)


def test_an_unavailable_provider_after_a_refusal_leaves_the_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    user = UserFactory.create()
    _refused(user, number=MISMATCH)

    _refused(user, number=UNAVAILABLE)

    row = RealName.objects.get(user=user)
    assert (row.status, row.rejection_code, row.attempts) == (RealNameStatus.REJECTED, "mismatch", 1)


def test_a_provider_crashing_leaves_the_row_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: Any, **kwargs: Any) -> VerificationResult:
        raise RuntimeError("bug")

    user = UserFactory.create()
    monkeypatch.setattr(verification.LocalIdentityProvider, "verify", crash)

    with pytest.raises(RuntimeError):
        realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)

    row = RealName.objects.get(user=user)
    assert (row.status, row.attempts, row.pending_since) == (RealNameStatus.UNVERIFIED, 0, None)


@pytest.mark.django_db(transaction=True)
def test_the_provider_is_called_outside_any_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    pending: list[str] = []

    def verify(self: object, *, name: str, id_number: str) -> VerificationResult:
        seen.append(transaction.get_connection().in_atomic_block)
        pending.append(RealName.objects.get().status)  # the intent was committed before the call
        return VerificationResult(outcome=VerificationOutcome.MATCH, provider="local")

    user = UserFactory.create()
    monkeypatch.setattr(verification.LocalIdentityProvider, "verify", verify)

    realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)

    assert seen == [False]
    assert pending == [RealNameStatus.PENDING]
    assert RealName.objects.get().status == RealNameStatus.VERIFIED


# --- one identity, how many accounts ------------------------------------------------------------------------------

def test_a_number_verified_by_one_account_is_refused_to_another() -> None:
    first, second = UserFactory.create(), UserFactory.create()
    realname_verify(user_id=first.pk, name=NAME, id_number=NUMBER)

    refused = _refused(second, number=NUMBER.lower())

    assert (refused.code, refused.status_code) == ("realname_id_number_taken", 409)
    row = RealName.objects.get(user=second)
    assert (row.status, row.rejection_code, row.attempts, row.id_number_index) == (
        RealNameStatus.REJECTED, "id_number_taken", 1, None)
    assert RealName.objects.filter(status=RealNameStatus.VERIFIED).count() == 1


def test_the_number_taken_is_found_before_the_provider_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = UserFactory.create(), UserFactory.create()
    realname_verify(user_id=first.pk, name=NAME, id_number=NUMBER)
    monkeypatch.setattr(verification.LocalIdentityProvider, "verify", _never_called)

    assert _refused(second).code == "realname_id_number_taken"


@override_settings(KAMENG_REALNAME_ACCOUNTS_PER_IDENTITY=2)
def test_a_configured_number_of_accounts_may_share_one_identity() -> None:
    first, second, third = UserFactory.create(), UserFactory.create(), UserFactory.create()

    realname_verify(user_id=first.pk, name=NAME, id_number=NUMBER)
    realname_verify(user_id=second.pk, name=NAME, id_number=NUMBER)
    refused = _refused(third)

    assert refused.code == "realname_id_number_taken"
    slots = RealName.objects.filter(status=RealNameStatus.VERIFIED).values_list("identity_slot", flat=True)
    assert sorted(slot or 0 for slot in slots) == [1, 2]


def test_the_database_refuses_two_verified_accounts_in_one_slot() -> None:
    first, second = UserFactory.create(), UserFactory.create()
    realname_verify(user_id=first.pk, name=NAME, id_number=NUMBER)

    with pytest.raises(IntegrityError), transaction.atomic():
        RealName.objects.create(user=second, status=RealNameStatus.VERIFIED, name=NAME, id_number=NUMBER,
                                id_number_index=identity_index_of(NUMBER), identity_slot=1)


def test_a_slot_taken_at_the_last_moment_is_answered_as_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another account verified the same person while the provider was answering this one."""
    first, second = UserFactory.create(), UserFactory.create()
    real_verify = verification.LocalIdentityProvider.verify

    def verify_and_race(self: verification.LocalIdentityProvider, *, name: str,
                        id_number: str) -> VerificationResult:
        RealName.objects.create(user=first, status=RealNameStatus.VERIFIED, name=name, id_number=id_number,
                                id_number_index=identity_index_of(id_number), identity_slot=1,
                                verified_at=timezone.now())
        return real_verify(self, name=name, id_number=id_number)

    monkeypatch.setattr(verification.LocalIdentityProvider, "verify", verify_and_race)

    refused = _refused(second)

    assert (refused.code, refused.status_code) == ("realname_id_number_taken", 409)
    row = RealName.objects.get(user=second)
    assert (row.status, row.name, row.id_number, row.id_number_index, row.identity_slot) == (
        RealNameStatus.REJECTED, None, None, None, None)


def test_staff_reset_forgets_the_identity_and_frees_it_for_another_account() -> None:
    first, second = UserFactory.create(), UserFactory.create()
    realname_verify(user_id=first.pk, name=NAME, id_number=NUMBER)

    realname_reset(user_id=first.pk)

    row = RealName.objects.get(user=first)
    assert (row.status, row.name, row.id_number, row.id_number_index, row.identity_slot, row.attempts) == (
        RealNameStatus.UNVERIFIED, None, None, None, None, 0)
    assert buyer_age(user_id=first.pk) is None
    realname_verify(user_id=second.pk, name=NAME, id_number=NUMBER)
    assert is_verified(user_id=second.pk) is True


# --- attempts -------------------------------------------------------------------------------------------------------

def test_attempts_are_limited_per_day(monkeypatch: pytest.MonkeyPatch) -> None:
    user = UserFactory.create()
    now = datetime(2026, 12, 3, 15, 0, tzinfo=timezone.get_current_timezone())
    monkeypatch.setattr(timezone, "now", lambda: now)
    for _ in range(5):
        assert _refused(user, number=MISMATCH).code == "realname_mismatch"

    refused = _refused(user)

    assert (refused.code, refused.status_code) == ("realname_too_many_attempts", 429)
    assert refused.extra == {"retry_after": 9 * 3600}  # until midnight, Beijing time
    assert RealName.objects.get(user=user).attempts == 5
    assert realname_of(user_id=user.pk).attempts_left_today == 0

    monkeypatch.setattr(timezone, "now", lambda: now + timedelta(hours=9))
    realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)
    assert RealName.objects.get(user=user).attempts == 1


def test_a_verification_in_progress_refuses_a_second_one_until_it_is_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    user = UserFactory.create()
    RealName.objects.create(user=user, status=RealNameStatus.PENDING, pending_since=timezone.now())

    refused = _refused(user)
    assert (refused.code, refused.status_code) == ("realname_in_progress", 409)

    RealName.objects.filter(user=user).update(pending_since=timezone.now() - timedelta(minutes=3))
    realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)
    assert is_verified(user_id=user.pk) is True


# --- nothing in the logs ------------------------------------------------------------------------------------------

def test_no_log_record_carries_the_name_or_the_number(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    first, second = UserFactory.create(), UserFactory.create()

    realname_verify(user_id=first.pk, name=NAME, id_number=NUMBER)
    _refused(second, number=MISMATCH)
    _refused(second, number=UNAVAILABLE)
    _refused(second, number=NUMBER)
    realname_reset(user_id=first.pk)

    assert caplog.records  # the flow does log, just not the person
    text = caplog.text + " ".join(str(record.args) for record in caplog.records)
    for secret in (NAME, NUMBER, MISMATCH, UNAVAILABLE, NUMBER[6:14], MISMATCH[6:14]):
        assert secret not in text
