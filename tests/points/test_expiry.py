"""Points expiry (KAMENG_POINTS_EXPIRY_DAYS): off by default; when set, points older than the window that no later
debit consumed expire, oldest first, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings

from kameng.ledger import recipes
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.services import journal_draft_post
from kameng.points.services import points_expire_due
from kameng.points.tasks import expire_points
from tests.factories import UserFactory
from tests.points.support import give_points, points_balance, points_journals

pytestmark = pytest.mark.django_db


def _age(reference: str, days: int) -> None:
    Journal.objects.filter(reference=reference).update(created_at=timezone.now() - timedelta(days=days))


def test_points_never_expire_by_default() -> None:
    user = UserFactory.create()
    give_points(user.pk, 100, reference="old")
    _age("old", 3650)

    assert expire_points() == 0
    assert points_balance(user_id=user.pk) == 100


def test_old_points_not_yet_used_expire_first_in_first_out(settings: Settings) -> None:
    settings.KAMENG_POINTS_EXPIRY_DAYS = 30
    user = UserFactory.create()
    give_points(user.pk, 100, reference="old")
    _age("old", 40)
    give_points(user.pk, 50, reference="new")
    _age("new", 5)
    # 30 points spent since: they came out of the oldest 100.
    journal_draft_post(draft=recipes.points_redeemed(reference="K-1", memo="抵扣", user_id=user.pk, points=30))

    assert points_expire_due() == 70
    assert points_balance(user_id=user.pk) == 50
    assert [(kind, points) for kind, _, points in points_journals(JournalKind.POINTS_EXPIRE)] == [
        (JournalKind.POINTS_EXPIRE, 70)]
    assert points_expire_due() == 0  # once
    # 30 days on, the newer 50 have expired too.
    assert points_expire_due(now=timezone.now() + timedelta(days=26)) == 50
    assert points_balance(user_id=user.pk) == 0
