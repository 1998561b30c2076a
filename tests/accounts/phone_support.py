"""Shared by the phone-login tests: an SMS sender that remembers what it sent, and a settable clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from kameng.accounts import phone_login


@dataclass
class SentCode:
    phone: str
    code: str
    minutes: int


@dataclass
class RecordingSender:
    sent: list[SentCode] = field(default_factory=list)
    fail_with: Exception | None = None

    def send_code(self, *, phone: str, code: str, minutes: int) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(SentCode(phone=phone, code=code, minutes=minutes))

    @property
    def last_code(self) -> str:
        return self.sent[-1].code


def recording_sender_install(monkeypatch: pytest.MonkeyPatch) -> RecordingSender:
    sender = RecordingSender()
    monkeypatch.setattr(phone_login, "sms_sender", lambda: sender)
    return sender


class Clock:
    """Stands in for kameng.accounts.phone_login._now (what code expiry is measured by)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def clock_install(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(phone_login, "_now", clock)
    return clock


def other_code(code: str) -> str:
    """A six-digit code that is surely not `code`."""
    return f"{(int(code) + 1) % 1_000_000:06d}"
