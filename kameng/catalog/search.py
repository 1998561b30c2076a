"""Product search for the storefront: what a query means (its terms) and which products on sale match it.

Chinese has no spaces between words, so a term matches anywhere inside a name (王者 finds 王者荣耀点券), and a
run of Chinese stuck to digits or Latin letters is cut where the script changes (话费100 → 话费, 100). Every term
must match one of the product's name, its category's name, the name or the face value of one of its enabled SKUs.
Spaces inside the names are ignored, so Q币 finds "腾讯 Q 币卡" and 100元 finds the SKU "100 元".
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Replace

from kameng.catalog.models import Product, Sku
from kameng.catalog.selectors import products_on_sale
from kameng.core.errors import ApplicationError

MAX_QUERY_LENGTH = 50
MAX_TERMS = 6
MAX_RESULTS = 60
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Runs of one script: Han characters, a number (face values such as 49.5), or letters of any other script.
_TERM_RE = re.compile(rf"[{_HAN}]+|\d+(?:\.\d+)?|[^\W\d_{_HAN}]+")
_NUMBER_RE = re.compile(r"\d{1,10}(?:\.\d{1,2})?")


class SearchQueryError(ApplicationError):
    """A query that cannot be searched for; the message says how to write one that can."""


def search_terms(query: str) -> list[str]:
    """The terms of a query, lower-cased, in order, without repeats ([] for a query of only spaces or
    punctuation). Raises `SearchQueryError` for a query too long, with too many terms, or with control
    characters (a NUL byte from a hand-made URL)."""
    if len(query) > MAX_QUERY_LENGTH * 4:  # not worth normalising
        raise SearchQueryError("搜索词太长：请输入不超过 %(limit)s 个字", code="search_query_too_long",
                               params={"limit": MAX_QUERY_LENGTH})
    text = unicodedata.normalize("NFKC", query)  # full-width Ｑ１００ is Q100
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co") and not char.isspace() for char in text):
        raise SearchQueryError("搜索词包含无法识别的字符：请只输入文字、字母和数字", code="search_query_characters")
    words = text.split()
    if len(" ".join(words)) > MAX_QUERY_LENGTH:
        raise SearchQueryError("搜索词太长：请输入不超过 %(limit)s 个字", code="search_query_too_long",
                               params={"limit": MAX_QUERY_LENGTH})
    terms: list[str] = []
    for word in words:
        for term in _TERM_RE.findall(word.casefold()):
            if term not in terms:
                terms.append(term)
    if len(terms) > MAX_TERMS:
        raise SearchQueryError("搜索词太多：请最多输入 %(limit)s 个词，如「王者 60」", code="search_too_many_terms",
                               params={"limit": MAX_TERMS})
    return terms


def _without_spaces(field: str) -> Replace:
    return Replace(F(field), Value(" "), Value(""))


def _sku_matches(term: str) -> Q:
    matches = Q(compact_name__icontains=term)
    if _NUMBER_RE.fullmatch(term):
        matches |= Q(face_value=Decimal(term))  # the pattern admits only what fits the field
    return matches


def products_matching(*, terms: list[str]) -> QuerySet[Product]:
    """Products on sale (as the home page lists them) matching every term, in the home page's order; at most
    MAX_RESULTS + 1 of them (the caller can tell there are more). No terms: none."""
    if not terms:
        return Product.objects.none()
    products = products_on_sale().annotate(compact_name=_without_spaces("name"),
                                           compact_category=_without_spaces("category__name"))
    skus = Sku.objects.filter(product=OuterRef("pk"), is_active=True).annotate(compact_name=_without_spaces("name"))
    for term in terms:
        products = products.filter(Q(compact_name__icontains=term) | Q(compact_category__icontains=term)
                                   | Exists(skus.filter(_sku_matches(term))))
    return products.order_by("sort_order", "id")[:MAX_RESULTS + 1]
