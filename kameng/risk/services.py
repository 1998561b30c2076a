"""Recording risk events. Callers pass details already free of secrets; messages are masked again here."""

from __future__ import annotations

import logging
from typing import Any

from kameng.core.masking import mask_text
from kameng.risk.models import RiskEvent, RiskSeverity

logger = logging.getLogger("kameng.risk")


def risk_event_record(*, kind: str, message: str, detail: dict[str, Any] | None = None,
                      severity: str = RiskSeverity.WARNING, user_id: int | None = None,
                      remote_addr: str | None = None) -> RiskEvent:
    safe_detail = {key: mask_text(str(value))[:500] for key, value in (detail or {}).items()}
    event = RiskEvent.objects.create(kind=kind[:40], severity=severity, message=mask_text(message)[:300],
                                     detail=safe_detail, user_id=user_id, remote_addr=remote_addr or None)
    logger.warning("risk %s (%s): %s from %s", kind, severity, message, remote_addr or "-")
    return event
