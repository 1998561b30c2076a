"""The purchase service: one entry for buying a SKU, whoever asks (the storefront, the JSON API, later the Open
API and sub-sites).

It decides how the order is paid — from the wallet, from the wallet if it covers the total else reserved for
payment, reserved for payment, or through a gateway channel — checks a channel and its amount limits before any
order exists, writes the order through `kameng.orders.services.order_checkout` (pricing, claims, journal), and,
for a gateway, starts the payment after commit, never inside a transaction. The answer is one `PurchaseResult`.

A checkout with a request id is retried once when the database connection failed under it: the connection is
closed and the same request sent again, and the replay rules answer it (the first order if it had landed).

Room is left for what comes next: a reseller's wallet as another way to pay, and the buyer's input of a direct
top-up (the account or phone number to credit) in `buyer_input`.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import InterfaceError, OperationalError, connection

from kameng.accounts.paypin import PinSettings, pin_settings_for, wallet_payment_authorize
from kameng.catalog.pricing import SALES_CHANNEL_STOREFRONT, PriceQuote, sku_price
from kameng.catalog.selectors import skus_for_sale
from kameng.core.errors import ApplicationError, NotFoundError
from kameng.ledger.selectors import wallet_balance
from kameng.ledger.services import InsufficientFundsError
from kameng.orders.models import Order
from kameng.orders.services import CheckoutResult, order_checkout
from kameng.payments.services import OrderPaymentStarted, order_payment_start, payment_channel_for_amount

logger = logging.getLogger(__name__)


class PayBy(enum.StrEnum):
    WALLET = "wallet"  # the wallet pays now, or nothing happens (insufficient balance)
    WALLET_OR_RESERVE = "wallet_or_reserve"  # the wallet pays if it covers the total, else the order waits
    RESERVE = "reserve"  # the order waits for payment, its keys reserved
    GATEWAY = "gateway"  # the order waits and a payment starts with `channel_code`


@dataclass(frozen=True)
class PaymentChoice:
    by: PayBy
    channel_code: str = ""
    pin: str | None = None  # the payment PIN the buyer typed, for a wallet payment above their password-free limit
    # The buyer's PIN settings as read from their row in this request (`pin_settings_of(request.user)`): saves the
    # query that would read them (kameng.accounts.paypin).
    pin_settings: PinSettings | None = field(default=None, compare=False)

    @classmethod
    def gateway(cls, channel_code: str) -> PaymentChoice:
        return cls(PayBy.GATEWAY, channel_code)


@dataclass(frozen=True)
class PurchaseResult:
    order: Order
    created: bool  # False: the request id was used before, this is its order
    secrets: list[str]
    payment: OrderPaymentStarted | None = None  # the gateway payment started for a new order
    payment_error: ApplicationError | None = None  # the order exists, but its gateway payment could not start

    @property
    def is_paid(self) -> bool:
        return self.order.paid_at is not None


def purchase_create(*, buyer_id: int, sku_id: int, quantity: int, payment: PaymentChoice, request_id: str | None,
                    sales_channel: str = SALES_CHANNEL_STOREFRONT, client_ip: str = "", return_url: str = "",
                    buyer_input: dict[str, str] | None = None) -> PurchaseResult:
    """Buy `quantity` of the SKU for the buyer, paid as `payment` says. Call it outside any transaction.

    Raises the checkout's errors (SKU not on sale, quantity, sold out, insufficient balance for `WALLET`, limits of
    unpaid orders, a reused request id), for a gateway the channel's (unknown, disabled, amount out of its range),
    and for a wallet payment above the buyer's password-free limit the PIN's (required, wrong, locked:
    kameng.accounts.paypin), all before any order exists. `return_url` is where the gateway sends the buyer back
    (payments' own return page when empty). `buyer_input` is for direct top-ups, which no product takes yet.
    """
    if buyer_input:
        raise ApplicationError("该商品不需要填写充值信息", code="buyer_input_unexpected")
    common: dict[str, Any] = {"buyer_id": buyer_id, "sku_id": sku_id, "quantity": quantity,
                              "request_id": request_id, "sales_channel": sales_channel, "client_ip": client_ip}
    if payment.by in (PayBy.WALLET, PayBy.WALLET_OR_RESERVE) and not _wallet_authorized(payment, common):
        payment = PaymentChoice(PayBy.RESERVE)  # WALLET_OR_RESERVE short of both the PIN and the balance
    if payment.by == PayBy.WALLET:
        return _result(_checkout(request_id, lambda: order_checkout(**common, batched=True)))
    if payment.by == PayBy.RESERVE:
        return _result(_checkout(request_id, lambda: order_checkout(**common, pay_with_wallet=False)))
    if payment.by == PayBy.WALLET_OR_RESERVE:
        return _result(_checkout(request_id, lambda: _wallet_or_reserve(common)))
    quote = purchase_quote(buyer_id=buyer_id, sku_id=sku_id, quantity=quantity, sales_channel=sales_channel)
    payment_channel_for_amount(channel_code=payment.channel_code, amount=quote.total)
    checkout = _checkout(request_id, lambda: order_checkout(**common, pay_with_wallet=False))
    if not checkout.created:
        return _result(checkout)
    try:
        started = order_payment_start(order_id=checkout.order.pk, buyer_id=buyer_id,
                                      channel_code=payment.channel_code, return_url=return_url or None,
                                      client_ip=client_ip)
    except ApplicationError as error:
        # The order exists and keeps its keys until it expires: the buyer can pay it another way.
        return PurchaseResult(order=checkout.order, created=True, secrets=[], payment_error=error)
    return PurchaseResult(order=started.order, created=True, secrets=[], payment=started)


def _result(checkout: CheckoutResult) -> PurchaseResult:
    return PurchaseResult(order=checkout.order, created=checkout.created, secrets=checkout.secrets)


def _wallet_authorized(payment: PaymentChoice, common: dict[str, Any]) -> bool:
    """Whether the wallet may pay, by the buyer's PIN settings: raises the PIN's errors for `WALLET` (and for
    `WALLET_OR_RESERVE` when the wallet covers the total); False when `WALLET_OR_RESERVE` needs a PIN it was not
    given and the wallet does not cover the total anyway (the order then waits for payment, whatever the balance
    does meanwhile). A buyer without a PIN costs no query here when the caller passed `pin_settings`.

    The total is the price function's now; the checkout prices the order again a moment later, so only a price
    changed in between (by staff) could make the two differ."""
    pin_settings = payment.pin_settings or pin_settings_for(user_id=common["buyer_id"])
    if not pin_settings.has_pin:
        return True
    total = purchase_quote(buyer_id=common["buyer_id"], sku_id=common["sku_id"], quantity=common["quantity"],
                           sales_channel=common["sales_channel"]).total
    if not pin_settings.needs_pin(total):
        return True
    if payment.by == PayBy.WALLET_OR_RESERVE and not payment.pin and wallet_balance(
            user_id=common["buyer_id"]) < total:
        return False
    wallet_payment_authorize(user_id=common["buyer_id"], amount=total, pin=payment.pin, pin_settings=pin_settings)
    return True


def _wallet_or_reserve(common: dict[str, Any]) -> CheckoutResult:
    """Pay from the wallet when it covers the total, otherwise leave the order waiting for payment (keys held)."""
    quote = purchase_quote(buyer_id=common["buyer_id"], sku_id=common["sku_id"], quantity=common["quantity"],
                           sales_channel=common["sales_channel"])
    if wallet_balance(user_id=common["buyer_id"]) >= quote.total:
        try:
            return order_checkout(**common, batched=True)
        except InsufficientFundsError:  # spent elsewhere between the look and the debit
            pass
    return order_checkout(**common, pay_with_wallet=False)


def _checkout(request_id: str | None, attempt: Callable[[], CheckoutResult]) -> CheckoutResult:
    """Run the checkout; once more, on a fresh connection, if the database connection failed under an idempotent
    one (request id given, not inside the caller's transaction).

    A dropped connection surfaces as OperationalError or InterfaceError (by then Django has usually replaced the
    broken connection, so it cannot be told apart by asking the connection); the rarer other causes of those errors
    (a statement timeout) are retried once too, which the request id makes safe: the retry is answered by the replay
    rules, with the first order if the first attempt had committed.
    """
    try:
        return attempt()
    except (OperationalError, InterfaceError):
        if not request_id or connection.in_atomic_block:
            raise
        logger.warning("database error during checkout %s; retrying once on a fresh connection", request_id,
                       exc_info=True)
        connection.close()
    return attempt()


def purchase_quote(*, buyer_id: int, sku_id: int, quantity: int, sales_channel: str) -> PriceQuote:
    """What the buyer would pay (the price function, before any order exists)."""
    sku = skus_for_sale(sku_ids=[sku_id]).get(sku_id)
    if sku is None:
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    return sku_price(sku=sku, buyer_id=buyer_id, quantity=quantity, sales_channel=sales_channel)
