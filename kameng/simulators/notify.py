"""The asynchronous-notification loop every simulated gateway runs, apart from what each protocol says.

Each gateway (易支付 V1/V2, Alipay, WeChat Pay) notifies the merchant the same way: send, record the attempt on
the trade row, try again after a backoff until the merchant acknowledges, give up after a fixed number of
attempts, and let the admin force one more. What differs is the protocol: how the request is built and sent, what
counts as an acknowledgement, the schedule and the number of attempts. Those stay in each gateway's services and
come in here as arguments; signing never does.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from celery import Task

from kameng.simulators.base_models import NotifiedTrade


@dataclass(frozen=True)
class NotifyPolicy:
    """A gateway's retry schedule: seconds to wait after the n-th failed attempt, and the number of attempts."""

    backoff_seconds: tuple[int, ...]
    max_attempts: int

    def backoff_after(self, *, attempts: int) -> int:
        return self.backoff_seconds[min(max(attempts, 1), len(self.backoff_seconds)) - 1]


@dataclass(frozen=True)
class NotifyAttempt:
    is_delivered: bool
    attempts: int
    response: str
    max_attempts: int

    @property
    def is_retry_due(self) -> bool:
        return not self.is_delivered and 0 < self.attempts < self.max_attempts


def is_body_exactly_success(status_code: int, body: str) -> bool:
    """易支付 V1/V2's and Alipay's only acknowledgement: a body of exactly the 7 bytes "success", whatever the
    status; anything else means try again."""
    return hmac.compare_digest(body.encode(), b"success")


def notify_http(method: str, url: str, *, transport: httpx.BaseTransport | None, timeout: float,
                **request: Any) -> tuple[int, str]:
    """One notification request (`transport` None = the network; tests hand in their own): status and body."""
    with httpx.Client(transport=transport, timeout=timeout) as client:
        response = client.request(method, url, **request)
        return response.status_code, response.text


def url_with_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` appended to whatever query it already has (a merchant's return_url)."""
    separator = "&" if "?" in url else "?"
    return url + separator + urlencode(params)


def notify_deliver(*, trade: NotifiedTrade, policy: NotifyPolicy, send: Callable[[], tuple[int, str]],
                   is_acknowledged: Callable[[int, str], bool], is_forced: bool, logger: logging.Logger,
                   label: str, reference: str) -> NotifyAttempt:
    """Send one notification attempt for a paid trade and record it. Never called inside a transaction.

    `send` makes the HTTP call and returns the status code and body; a transport error counts as status 0 and an
    empty body, which no protocol acknowledges. Without `is_forced` nothing is sent once acknowledged or out of
    attempts, so a task delivered twice sends no extra notification.
    """
    if not is_forced and (trade.notified_at is not None or trade.notify_attempts >= policy.max_attempts):
        return NotifyAttempt(is_delivered=trade.notified_at is not None, attempts=trade.notify_attempts,
                             response=trade.last_notify_response, max_attempts=policy.max_attempts)
    try:
        status_code, body = send()
        response = f"HTTP {status_code}: {body[:1000]}"
    except httpx.HTTPError as error:
        status_code, body, response = 0, "", f"{type(error).__name__}: {error}"[:1000]
    is_delivered = is_acknowledged(status_code, body)
    attempts = trade.notify_attempt_record(response=response, is_delivered=is_delivered)
    if not is_delivered:
        logger.info("%s simulator: notify %s attempt %s not acknowledged: %s", label, reference, attempts,
                    response[:200])
    return NotifyAttempt(is_delivered=is_delivered, attempts=attempts, response=response,
                         max_attempts=policy.max_attempts)


def notify_task_run(*, task: Task[Any, Any], trade_id: int, send: Callable[..., NotifyAttempt],
                    policy: NotifyPolicy) -> bool:
    """The body of a gateway's notify task: one attempt, and the next one scheduled if it is due.

    The attempt count lives on the trade row, so a task delivered twice never sends more than the maximum.
    """
    attempt = send(trade_id=trade_id)
    if attempt.is_retry_due:
        task.apply_async(args=[trade_id], countdown=policy.backoff_after(attempts=attempt.attempts))
    return attempt.is_delivered
