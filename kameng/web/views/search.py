"""Product search: the header's search box leads here; results are product cards like the home page's."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from kameng.catalog.search import MAX_QUERY_LENGTH, MAX_RESULTS, SearchQueryError, products_matching, search_terms
from kameng.catalog.selectors import categories_visible
from kameng.web.errors import rejected
from kameng.web.product_cards import product_cards
from kameng.web.subsites import sales_channel_of

MAX_SUGGESTIONS = 6


def _suggestions() -> list[str]:
    """What to try instead: the categories on show, each a search that finds something."""
    return list(categories_visible().values_list("name", flat=True)[:MAX_SUGGESTIONS])


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    context = {"search_query": query[:MAX_QUERY_LENGTH * 2], "rows": [], "has_more": False, "is_blank": False,
               "suggestions": _suggestions(), "page_url": reverse("web:search")}
    try:
        terms = search_terms(query)
    except SearchQueryError as error:
        return rejected(request, "web/search.html", context, error)
    if not terms:  # nothing typed (or only spaces or punctuation): say what can be searched for
        return render(request, "web/search.html", {**context, "is_blank": True})
    rows = product_cards(products_matching(terms=terms), sales_channel=sales_channel_of(request))
    return render(request, "web/search.html", {**context, "rows": rows[:MAX_RESULTS],
                                               "has_more": len(rows) > MAX_RESULTS})
