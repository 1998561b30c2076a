"""The acg-faka 店铺共享 paths (kameng.openapi.acg_shared), relative to /openapi/acg/: acg-faka appends them to the
店铺地址 it was given, exactly as spelt here."""

from __future__ import annotations

from django.urls import URLPattern, path

from kameng.openapi import acg_shared

urlpatterns: list[URLPattern] = [
    path("shared/authentication/connect", acg_shared.connect_view, name="acg_shared_connect"),
    path("shared/commodity/items", acg_shared.items_view, name="acg_shared_items"),
    path("shared/commodity/item", acg_shared.item_view, name="acg_shared_item"),
    path("shared/commodity/inventory", acg_shared.inventory_view, name="acg_shared_inventory"),
    path("shared/commodity/inventoryState", acg_shared.inventory_state_view, name="acg_shared_inventory_state"),
    path("shared/commodity/trade", acg_shared.trade_view, name="acg_shared_trade"),
    path("shared/commodity/query", acg_shared.query_view, name="acg_shared_query"),
    path("shared/commodity/draftCard", acg_shared.draft_card_view, name="acg_shared_draft_card"),
    path("media/<path:name>", acg_shared.cover, name="acg_shared_cover"),
]
