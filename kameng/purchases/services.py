"""The purchase service: one entry for buying a SKU, whoever asks (the storefront, the JSON API, later the Open
API and sub-sites).

It decides how the order is paid — from the wallet, from the wallet if it covers the total else reserved for
payment, reserved for payment, or through a gateway channel — checks a channel and its amount limits before any
order exists, writes the order through `kameng.orders.services.order_checkout` (pricing, claims, journal), and,
for a gateway, starts the payment after commit, never inside a transaction. The answer is one `PurchaseResult`.

A checkout with a request id is retried once when the database connection failed under it: the connection is
closed and the same request sent again, and the replay rules answer it (the first order if it had landed).

A direct top-up (直充) takes the buyer's input (the phone number or game account to credit) in `buyer_input`:
checked against the product's form (kameng.catalog.topup_forms) before any order exists, and stored encrypted on
the order by the checkout. Room is left for a reseller's wallet as another way to pay.

Risk control's order checkpoint (kameng.risk.engine) runs first, before anything else is looked at: with no rule
enabled it costs nothing; the minors' rule for game goods reads the buyer's age and this month's game-goods
spending only for game goods (`purchase_risk_check`).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from kameng.accounts.paypin import PinSettings, pin_settings_for, wallet_payment_authorize
from kameng.accounts.selectors import buyer_age, user_fingerprints
from kameng.catalog.models import DeliveryKind
from kameng.catalog.pricing import SALES_CHANNEL_STOREFRONT, PriceQuote, sku_price
from kameng.catalog.selectors import is_game_goods_sku, skus_for_sale, topup_form_for_sku
from kameng.catalog.topup_forms import topup_input_clean
from kameng.core.errors import ApplicationError, NotFoundError
from kameng.ledger.selectors import wallet_balance
from kameng.ledger.services import InsufficientFundsError
from kameng.orders.models import Order
from kameng.orders.selectors import buyer_game_goods_spent
from kameng.orders.services import CheckoutResult, order_checkout, order_sold_out_known_check
from kameng.payments.services import OrderPaymentStarted, order_payment_start, payment_channel_for_amount
from kameng.risk.engine import RiskContext, RiskResult, risk_check
from kameng.risk.models import Checkpoint

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
                    buyer_input: Mapping[str, Any] | None = None, points: int = 0,
                    device_id: str = "", request_id_unused: bool = False) -> PurchaseResult:
    """Buy `quantity` of the SKU for the buyer, paid as `payment` says. Call it outside any transaction.

    Raises the checkout's errors (SKU not on sale, quantity, sold out, insufficient balance for `WALLET`, limits of
    unpaid orders, a reused request id), for a gateway the channel's (unknown, disabled, amount out of its range),
    and for a wallet payment above the buyer's password-free limit the PIN's (required, wrong, locked:
    kameng.accounts.paypin), all before any order exists. `return_url` is where the gateway sends the buyer back
    (payments' own return page when empty). `buyer_input` is a direct top-up's form, field name → value
    (kameng.catalog.topup_forms: a field missing or wrong raises TopupInputError naming it, 400); refused for other
    delivery kinds. Without it a direct top-up is refused by the checkout ("请填写…").
    `points` offsets cash with the buyer's points (积分): only paid from the wallet, never left waiting for payment.
    Risk control's order checkpoint comes first (`purchase_risk_check`: RiskBlockedError and its kin, 403).
    `device_id` is the client's (kameng.core.device.risk_device_id), for per-device rules.

    A SKU this process just found sold out is answered first, before risk control and the rest (a flash sale's
    losers: kameng.orders.services.order_sold_out_known_check); `request_id_unused` says the caller has just looked
    the request id up and found no order under it, which spares that check its query for a replay.
    """
    order_sold_out_known_check(buyer_id=buyer_id, sku_id=sku_id, request_id=None if request_id_unused else request_id)
    purchase_risk_check(buyer_id=buyer_id, sku_id=sku_id, quantity=quantity, sales_channel=sales_channel,
                        client_ip=client_ip, device_id=device_id, points=points)
    common: dict[str, Any] = {"buyer_id": buyer_id, "sku_id": sku_id, "quantity": quantity,
                              "request_id": request_id, "sales_channel": sales_channel, "client_ip": client_ip}
    if buyer_input is not None:  # only then: a card-key checkout costs no look-up of the product's form
        common["topup_target"] = purchase_topup_target(sku_id=sku_id, buyer_input=buyer_input)
    if points:  # the wallet pays the rest now, or nothing happens
        if payment.by not in (PayBy.WALLET, PayBy.WALLET_OR_RESERVE):
            raise ApplicationError("使用积分抵扣时须用余额支付", code="points_need_wallet")
        payment = replace(payment, by=PayBy.WALLET)
    if payment.by in (PayBy.WALLET, PayBy.WALLET_OR_RESERVE) and not _wallet_authorized(payment, common, points):
        payment = PaymentChoice(PayBy.RESERVE)  # WALLET_OR_RESERVE short of both the PIN and the balance
    if payment.by == PayBy.WALLET:
        return _result(_checkout(request_id, lambda: order_checkout(**common, batched=True, points=points)))
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


SHANGHAI = ZoneInfo("Asia/Shanghai")


def month_start(now: datetime | None = None) -> datetime:
    """The first instant of the current calendar month in China (the minors' monthly limits)."""
    local = timezone.localtime(now or timezone.now(), SHANGHAI)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def purchase_risk_check(*, buyer_id: int, sku_id: int, quantity: int, sales_channel: str, client_ip: str = "",
                        device_id: str = "", points: int = 0) -> RiskResult:
    """The order checkpoint (kameng.risk.engine), before any order exists. The facts that cost a query are given
    as functions the rules call only if they need them: the amount (the price function), whether the SKU is game
    goods (cached), the buyer's age from the verified ID and their game-goods spending this month, the buyer's
    phone and ID fingerprints (one query, for phone / ID rules and blacklists)."""

    def amount() -> Decimal:
        return purchase_quote(buyer_id=buyer_id, sku_id=sku_id, quantity=quantity, sales_channel=sales_channel,
                              points=points).total

    fingerprints: list[tuple[str | None, str | None]] = []

    def fingerprint(which: int) -> str | None:
        if not fingerprints:
            fingerprints.append(user_fingerprints(user_id=buyer_id))
        return fingerprints[0][which]

    context = RiskContext(user_id=buyer_id, ip=client_ip or None, device_id=device_id or None, extras={
        "amount": amount,
        "phone_fingerprint": lambda: fingerprint(0),
        "id_fingerprint": lambda: fingerprint(1),
        "is_game_goods": lambda: is_game_goods_sku(sku_id=sku_id),
        "age": lambda: buyer_age(user_id=buyer_id),
        "month_spent": lambda: buyer_game_goods_spent(buyer_id=buyer_id, since=month_start()),
    })
    return risk_check(checkpoint=Checkpoint.ORDER, context=context)


def purchase_topup_target(*, sku_id: int, buyer_input: Mapping[str, Any]) -> dict[str, str] | None:
    """The buyer's input cleaned against the SKU's top-up form (None when there is nothing to store: not a direct
    top-up and nothing entered). Raises TopupInputError naming the field, or `buyer_input_unexpected` for input
    given to a product that takes none."""
    found = topup_form_for_sku(sku_id=sku_id)
    if found is None:
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    delivery_kind, form = found
    if delivery_kind != DeliveryKind.DIRECT_TOPUP:
        if any(str(value).strip() for value in buyer_input.values() if value is not None):
            raise ApplicationError("该商品不需要填写充值信息", code="buyer_input_unexpected")
        return None
    return topup_input_clean(form=form, data=buyer_input)


def _result(checkout: CheckoutResult) -> PurchaseResult:
    return PurchaseResult(order=checkout.order, created=checkout.created, secrets=checkout.secrets)


def _wallet_authorized(payment: PaymentChoice, common: dict[str, Any], points: int = 0) -> bool:
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
                           sales_channel=common["sales_channel"], points=points).total
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


def purchase_quote(*, buyer_id: int, sku_id: int, quantity: int, sales_channel: str, points: int = 0) -> PriceQuote:
    """What the buyer would pay (the price function, before any order exists), `points` offsetting part of it."""
    sku = skus_for_sale(sku_ids=[sku_id]).get(sku_id)
    if sku is None:
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    return sku_price(sku=sku, buyer_id=buyer_id, quantity=quantity, sales_channel=sales_channel, points=points)
