from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import SupplierFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_console_shows_its_supplier_to_its_owner(client: Client) -> None:
    supplier = SupplierFactory.create(name="甲供货")
    client.force_login(supplier.owner)

    response = client.get("/supplier/")

    assert response.status_code == 200
    assert "甲供货" in response.content.decode()


def test_a_buyer_gets_404_from_the_console(client: Client) -> None:
    client.force_login(UserFactory.create())

    assert client.get("/supplier/").status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(client: Client) -> None:
    response = client.get("/supplier/")

    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_account_page_leads_a_supplier_to_its_console_and_a_buyer_to_applying(client: Client) -> None:
    supplier = SupplierFactory.create()
    client.force_login(supplier.owner)
    as_supplier = client.get("/account/").content.decode()
    client.force_login(UserFactory.create())
    as_buyer = client.get("/account/").content.decode()

    assert 'href="/supplier/"' in as_supplier
    assert 'href="/supplier/apply/"' not in as_supplier
    assert 'href="/supplier/apply/"' in as_buyer
