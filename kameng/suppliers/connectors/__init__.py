"""Connectors to upstream suppliers: one protocol (`base.SupplierConnector`), one class per upstream kind."""
