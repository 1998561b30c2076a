"""`manage.py ledger_check`: prove that every journal balances and every balance equals the sum of its legs."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from kameng.ledger.models import Account, Entry, Journal
from kameng.ledger.selectors import ledger_problems


class Command(BaseCommand):
    help = "Check the ledger invariants; exits non-zero and lists each problem if any is violated."

    def handle(self, *args: Any, **options: Any) -> None:
        problems = ledger_problems()
        counts = (Journal.objects.count(), Entry.objects.count(), Account.objects.count())
        if problems:
            for problem in problems:
                self.stderr.write(f"{problem.what}: {problem.detail}")
            raise CommandError(f"ledger check FAILED: {len(problems)} problem(s)")
        self.stdout.write(self.style.SUCCESS(
            f"ledger OK: {counts[0]} journals, {counts[1]} entries, {counts[2]} accounts balance"))
