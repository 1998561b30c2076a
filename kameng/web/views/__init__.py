"""Storefront views, one module per area: accounts, shop (browse and buy), orders, wallet, payments."""
