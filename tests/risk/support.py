"""Helpers for the risk tests: rules made as staff make them (saved, so every process sees the new version)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kameng.risk.models import Action, RiskRule, RuleKind


def rule(*, checkpoint: str, kind: str = RuleKind.VELOCITY, dimension: str = "", limit: int = 4,
         window_seconds: int = 3600, amount_threshold: str | None = None, action: str = Action.BLOCK,
         priority: int = 100, message: str = "", **more: Any) -> RiskRule:
    return RiskRule.objects.create(
        name=f"{checkpoint}-{kind}-{dimension or 'any'}", checkpoint=checkpoint, kind=kind, dimension=dimension,
        limit=limit, window_seconds=window_seconds, action=action, priority=priority, message=message,
        amount_threshold=Decimal(amount_threshold) if amount_threshold is not None else None, **more)
