"""The reseller console's frame (代理后台, under /reseller/): who may enter, the navigation, the overview page.

Each console page is a view decorated with `reseller_required` (a logged-in user who is a reseller; the request
then carries it as `request.reseller`, and every query of the page is scoped to it) and rendered with
`console_render`, which adds the navigation. Pages that only an approved reseller may use take
`reseller_required(active=True)`. A page of another reseller's objects answers 404, never 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop
from django.views.decorators.http import require_GET

from kameng.resellers.models import Reseller
from kameng.resellers.stats import STATS_DAYS, bar_chart, reseller_stats
from kameng.web.http import BuyerRequest


class ResellerRequest(BuyerRequest):
    reseller: Reseller


# (url name, label) of each console page, in menu order; each page's module adds its own entry here.
RESELLER_CONSOLE_NAV: list[tuple[str, Promise]] = [
    ("web:reseller_home", gettext_lazy("概览")),
]

# The menu's order (each page module appends its entry when it is imported, in import order): what a reseller
# does most first. A page not listed here goes last.
CONSOLE_NAV_ORDER = ("web:reseller_home", "web:reseller_prices", "web:reseller_batch", "web:reseller_subsite",
                     "web:reseller_margins", "web:reseller_promotion", "web:reseller_withdrawals",
                     "web:reseller_apikeys", "web:reseller_notifications")

# The labels of the reseller models' choices (kameng/resellers/models.py, earnings_models.py) that the console pages
# show with {% translate %}: the models keep plain Chinese labels, so they are listed here for makemessages.
CONSOLE_CHOICE_LABELS = (
    gettext_noop("申请中"), gettext_noop("正常"), gettext_noop("已拒绝"), gettext_noop("已停用"),  # ResellerStatus
    gettext_noop("待发送"), gettext_noop("重试中"), gettext_noop("已送达"), gettext_noop("已放弃"),  # NotifyState
    gettext_noop("百分比"), gettext_noop("固定金额"),  # MarkupKind
    gettext_noop("待确认"), gettext_noop("可用"), gettext_noop("已提现"), gettext_noop("已冲回"),  # EarningState
    gettext_noop("待审核"), gettext_noop("已打款"), gettext_noop("已驳回"),  # ResellerWithdrawalStatus
    gettext_noop("银行卡提现"), gettext_noop("转入余额"),  # ResellerWithdrawalDestination
)

View = Callable[..., HttpResponseBase]  # a page, or a streamed file


def reseller_required(view: View | None = None, *, active: bool = False) -> Any:
    """Only a reseller gets in (with `active=True`, only an approved one); 404 for anyone else, so the console's
    URLs do not tell a buyer they exist."""

    def decorate(inner: View) -> View:
        @wraps(inner)
        @login_required
        def wrapped(request: ResellerRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            reseller = Reseller.objects.select_related("tier").filter(user_id=request.user.pk).first()
            if reseller is None or (active and not reseller.is_active):
                raise Http404("不是代理商账号")
            request.reseller = reseller
            return inner(request, *args, **kwargs)

        return wrapped

    return decorate(view) if view is not None else decorate


def console_nav(reseller: Reseller) -> list[tuple[str, Promise]]:
    """The menu entries `reseller` may use, in CONSOLE_NAV_ORDER: every page for an approved reseller, only the
    overview for one that is pending, rejected or suspended (the other pages answer 404 to it)."""
    entries = [entry for entry in RESELLER_CONSOLE_NAV if reseller.is_active or entry[0] == "web:reseller_home"]
    rank = {name: index for index, name in enumerate(CONSOLE_NAV_ORDER)}
    return sorted(entries, key=lambda entry: rank.get(entry[0], len(rank)))


def console_render(request: ResellerRequest, template: str, context: dict[str, Any] | None = None,
                   *, status: int = 200) -> HttpResponse:
    page = {"reseller": request.reseller, "console_nav": console_nav(request.reseller),
            "console_current": request.resolver_match.view_name if request.resolver_match else ""}
    return render(request, template, {**page, **(context or {})}, status=status)


@require_GET
@reseller_required
def reseller_home(request: ResellerRequest) -> HttpResponse:
    """The status; for an active reseller, its sales, margin and commission of the last 30 days as charts (inline
    SVG) and tables (kameng.resellers.stats)."""
    if not request.reseller.is_active:
        return console_render(request, "web/reseller/home.html")
    stats = reseller_stats(user_id=request.user.pk)
    days = [(row.key[5:], row) for row in stats.days]  # MM-DD
    charts = [
        bar_chart(title=_("每日销售额（元）"), points=[(label, row.sales) for label, row in days]),
        bar_chart(title=_("每日分站利润（元）"), points=[(label, row.margin) for label, row in days]),
        bar_chart(title=_("每日推广佣金（元）"), points=[(label, row.commission) for label, row in days]),
        bar_chart(title=_("各商品销售额（元）"), points=[(row.key, row.sales) for row in stats.products[:20]]),
    ]
    return console_render(request, "web/reseller/home.html", {"stats": stats, "charts": charts,
                                                              "stats_days": STATS_DAYS})
