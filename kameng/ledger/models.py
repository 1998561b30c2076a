"""The double-entry ledger: accounts, journals (one per business event) and their legs.

Every leg is a positive amount on the debit or credit side; a journal's debits equal its credits. Wallets keep a
cached balance updated in the same transaction as their legs, with a database CHECK that it never goes below zero.
Busy platform accounts (revenue, gateway clearing) keep no cached balance — updating one row on every order would
serialise all checkouts — and their balance is the sum of their legs.

Every account has one unit (`currency`): CNY for money, `PTS` for points (积分, kameng.points). A journal moves one
unit only, so "debits equal credits" holds per unit; points are whole numbers, kept in the same decimal columns.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from kameng.core.money import CURRENCY

# The unit of points accounts: a buyer's points (积分) are not money and never mix with it in a journal.
POINTS_UNIT = "PTS"


class Side(models.TextChoices):
    DEBIT = "D", "借"
    CREDIT = "C", "贷"


class AccountKind(models.TextChoices):
    WALLET = "wallet", "用户钱包"
    WALLET_HOLD = "wallet_hold", "待审核充值"
    GATEWAY_CLEARING = "gateway_clearing", "支付通道清算"
    PLATFORM_REVENUE = "platform_revenue", "平台收入"
    ORDERS_IN_PROGRESS = "orders_in_progress", "待交付订单"
    REFUNDS_PAYABLE = "refunds_payable", "应付退款"
    # Points (unit PTS): the buyer's points, and the platform's side of every points movement.
    POINTS = "points", "用户积分"
    POINTS_ISSUED = "points_issued", "已发放积分"
    POINTS_REDEEMED = "points_redeemed", "已使用积分"
    POINTS_EXPIRED = "points_expired", "已过期积分"
    # Suppliers (kameng.suppliers.settlement / withdrawals). A supplier's earned money is NOT its buyer wallet: the
    # payable is withdrawable (提现), a wallet never is. One payable and one debt account per supplier owner.
    SUPPLIER_PAYABLE = "supplier_payable", "供货商应付"
    SUPPLIER_DEBT = "supplier_debt", "供货商欠款（退款冲回）"
    TAX_WITHHELD = "tax_withheld", "代扣税费"
    SUPPLIER_WITHDRAWALS_IN_REVIEW = "supplier_withdrawals_in_review", "供货商提现审核中"
    SUPPLIER_PAYOUT_CLEARING = "supplier_payout_clearing", "供货商提现打款"
    # Resellers (kameng.resellers): margins and commissions owed but not yet confirmed (one system account), each
    # beneficiary's confirmed commission (withdrawable or moved into its wallet), and its withdrawals.
    RESELLER_EARNINGS_PENDING = "reseller_earnings_pending", "代理收益待确认"
    RESELLER_COMMISSION = "reseller_commission", "代理佣金余额"
    RESELLER_WITHDRAWALS_IN_REVIEW = "reseller_withdrawals_in_review", "代理提现审核中"
    RESELLER_PAYOUT_CLEARING = "reseller_payout_clearing", "代理提现打款"


# The kinds whose accounts are counted in points, not money.
POINTS_KINDS = frozenset({AccountKind.POINTS, AccountKind.POINTS_ISSUED, AccountKind.POINTS_REDEEMED,
                          AccountKind.POINTS_EXPIRED})


class Account(models.Model):
    code = models.CharField("科目代码", max_length=80, unique=True)
    kind = models.CharField("类型", max_length=32, choices=AccountKind.choices)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="所属用户", null=True, blank=True,
                              on_delete=models.PROTECT, related_name="ledger_accounts")
    currency = models.CharField("币种", max_length=8, default=CURRENCY)
    normal_side = models.CharField("余额方向", max_length=1, choices=Side.choices)
    is_balance_cached = models.BooleanField("缓存余额", default=True)
    is_negative_allowed = models.BooleanField("允许负余额", default=False)
    balance = models.DecimalField("余额", max_digits=16, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = "账户"
        verbose_name_plural = "账户"
        constraints = [
            models.CheckConstraint(
                condition=Q(is_negative_allowed=True) | Q(balance__gte=0), name="ledger_account_balance_not_negative",
                violation_error_message="余额不能为负：该账户不允许负余额，请检查扣款金额",
            ),
            # No `condition` (system accounts have no owner, and NULLs never collide): MySQL/MariaDB silently drop
            # conditional unique constraints, which would let a race create two wallets for one user there.
            models.UniqueConstraint(fields=["owner", "kind"], name="ledger_account_one_per_owner_kind"),
        ]

    def __str__(self) -> str:
        return self.code


class JournalKind(models.TextChoices):
    WALLET_TOPUP = "wallet_topup", "钱包充值"
    ORDER_PAYMENT = "order_payment", "订单支付"
    ORDER_SALE = "order_sale", "订单收入确认"
    ORDER_REFUND = "order_refund", "订单退款"
    REFUND_PAYOUT = "refund_payout", "原路退款"
    REFUND_PAYOUT_REVERSAL = "refund_payout_reversal", "原路退款失败，退回钱包"
    ADJUSTMENT = "adjustment", "人工调整"
    # Points (unit PTS), kameng.points. Reversals are journals of their own, never edits of the first one.
    POINTS_EARN = "points_earn", "积分发放"
    POINTS_EARN_REVERSAL = "points_earn_reversal", "积分扣回"
    POINTS_REDEEM = "points_redeem", "积分抵扣"
    POINTS_REDEEM_RETURN = "points_redeem_return", "积分退回"
    POINTS_EXCHANGE = "points_exchange", "积分兑换"
    POINTS_EXPIRE = "points_expire", "积分过期"
    # Suppliers: settlement of a delivered order, its reversal on refund, withdrawals and their review.
    SUPPLIER_SETTLEMENT = "supplier_settlement", "供货商结算"
    SUPPLIER_SETTLEMENT_REVERSAL = "supplier_settlement_reversal", "供货商结算冲回"
    SUPPLIER_WITHDRAWAL = "supplier_withdrawal", "供货商提现申请"
    SUPPLIER_WITHDRAWAL_PAID = "supplier_withdrawal_paid", "供货商提现已打款"
    SUPPLIER_WITHDRAWAL_REJECTED = "supplier_withdrawal_rejected", "供货商提现驳回"
    # Resellers: a sub-site's margin and the chain's commissions, pending → confirmed (margin into the wallet,
    # commission into the commission account) or reversed on refund; commission withdrawals and their review.
    RESELLER_MARGIN_PENDING = "reseller_margin_pending", "分站利润待确认"
    RESELLER_MARGIN_RELEASED = "reseller_margin_released", "分站利润入账"
    RESELLER_MARGIN_REVERSED = "reseller_margin_reversed", "分站利润冲回"
    COMMISSION_PENDING = "commission_pending", "推广佣金待确认"
    COMMISSION_RELEASED = "commission_released", "推广佣金入账"
    COMMISSION_REVERSED = "commission_reversed", "推广佣金冲回"
    COMMISSION_TO_WALLET = "commission_to_wallet", "佣金转入余额"
    COMMISSION_WITHDRAWAL = "commission_withdrawal", "佣金提现申请"
    COMMISSION_WITHDRAWAL_PAID = "commission_withdrawal_paid", "佣金提现已打款"
    COMMISSION_WITHDRAWAL_REJECTED = "commission_withdrawal_rejected", "佣金提现驳回"
    # AML review (反洗钱, kameng.payments.aml): a held top-up (posted as WALLET_TOPUP into the owner's WALLET_HOLD)
    # released into the wallet, or refunded through its channel (and back into the hold if the gateway refuses).
    AML_TOPUP_RELEASED = "aml_topup_released", "充值审核通过，已入账"
    AML_TOPUP_REFUNDED = "aml_topup_refunded", "充值审核未通过，原路退款"
    AML_TOPUP_REFUND_REVERSAL = "aml_topup_refund_reversal", "充值原路退款失败，退回待审核"


class Journal(models.Model):
    kind = models.CharField("业务类型", max_length=32, choices=JournalKind.choices)
    # (kind, reference) is unique: posting the same business event twice is refused by the database.
    reference = models.CharField("业务单号", max_length=64)
    memo = models.CharField("摘要", max_length=200, blank=True)
    created_at = models.DateTimeField("记账时间", auto_now_add=True)

    class Meta:
        verbose_name = "记账凭证"
        verbose_name_plural = "记账凭证"
        constraints = [models.UniqueConstraint(fields=["kind", "reference"], name="ledger_journal_unique_event")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.reference}"


class Entry(models.Model):
    journal = models.ForeignKey(Journal, verbose_name="记账凭证", on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(Account, verbose_name="账户", on_delete=models.PROTECT, related_name="entries")
    side = models.CharField("方向", max_length=1, choices=Side.choices)
    amount = models.DecimalField("金额", max_digits=16, decimal_places=2)

    class Meta:
        verbose_name = "分录"
        verbose_name_plural = "分录"
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_entry_amount_positive",
                                              violation_error_message="分录金额必须大于 0：借贷方向用「方向」表示，"
                                                                      "金额只填正数")]

    def __str__(self) -> str:
        return f"{self.get_side_display()} {self.account_id} {self.amount}"
