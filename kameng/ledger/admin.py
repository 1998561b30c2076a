"""Back office for the ledger: read only. Money moves only through services, never through an admin form."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.db.models import Case, DecimalField, F, OuterRef, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import display

from kameng.core.admin import ReadOnlyAdminMixin
from kameng.core.money import money
from kameng.ledger.models import Account, Entry, Journal


def _entries_balance() -> Subquery:
    signed = Case(When(side=F("account__normal_side"), then=F("amount")), default=-F("amount"),
                  output_field=DecimalField(max_digits=18, decimal_places=2))
    return Subquery(
        Entry.objects.filter(account_id=OuterRef("pk")).order_by().values("account_id")
        .annotate(total=Sum(signed)).values("total")[:1],
        output_field=DecimalField(max_digits=18, decimal_places=2),
    )


@admin.register(Account)
class AccountAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("code", "kind", "owner", "currency", "current_balance", "is_balance_cached")
    list_filter = ("kind", "is_balance_cached", "currency")
    list_select_related = ("owner",)
    search_fields = ("code", "owner__username")
    fields = ("code", "kind", "owner", "currency", "normal_side", "is_balance_cached", "is_negative_allowed",
              "current_balance", "created_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Account]:
        # Uncached accounts (revenue, clearing) have no balance column to trust: sum their legs, in the same query.
        return super().get_queryset(request).annotate(
            entries_balance=Coalesce(_entries_balance(), Value(Decimal("0.00")),
                                     output_field=DecimalField(max_digits=18, decimal_places=2)))

    @display(description="余额")
    def current_balance(self, obj: Account) -> str:
        # A summed balance comes back unquantised (48.8000000000000 on SQLite): shown as money, to the fen.
        balance = obj.balance if obj.is_balance_cached else getattr(obj, "entries_balance", Decimal("0.00"))
        return f"¥{money(Decimal(balance))}"


class EntryInline(ReadOnlyAdminMixin, TabularInline):
    model = Entry
    extra = 0
    can_delete = False
    fields = ("account", "side", "amount")
    readonly_fields = fields


@admin.register(Journal)
class JournalAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("id", "kind", "reference", "memo", "created_at")
    list_filter = ("kind", "created_at")
    search_fields = ("=reference", "memo")
    fields = ("kind", "reference", "memo", "created_at")
    readonly_fields = fields
    inlines = (EntryInline,)


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("id", "journal", "account", "side", "amount")
    list_filter = ("side", "account__kind")
    list_select_related = ("journal", "account")
    search_fields = ("=journal__reference", "account__code")
    fields = ("journal", "account", "side", "amount")
    readonly_fields = fields
