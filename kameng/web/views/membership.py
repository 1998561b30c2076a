"""The buyer's membership page (会员中心): level, cumulative spend, progress to the next level, every level's
benefits."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from kameng.membership.selectors import membership_summary
from kameng.web.http import BuyerRequest


@require_GET
@login_required
def membership(request: BuyerRequest) -> HttpResponse:
    return render(request, "web/membership.html", {"summary": membership_summary(user_id=request.user.pk)})
