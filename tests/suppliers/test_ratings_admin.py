from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from kameng.suppliers.models import RatingSnapshot, RatingWeights
from tests.factories import SupplierFactory

pytestmark = pytest.mark.django_db

WEIGHTS_FORM = {"success_weight": "0.4", "delivery_weight": "0.2", "after_sales_weight": "0.2",
                "price_weight": "0.1", "stock_weight": "0.1"}


def test_staff_set_weights_that_sum_to_one(admin_client: Client) -> None:
    weights = RatingWeights.current()

    response = admin_client.post(f"/admin/suppliers/ratingweights/{weights.pk}/change/", WEIGHTS_FORM)

    assert response.status_code == 302
    weights.refresh_from_db()
    assert (weights.success_weight, weights.price_weight) == (Decimal("0.400"), Decimal("0.100"))


def test_weights_that_do_not_sum_to_one_are_refused(admin_client: Client) -> None:
    weights = RatingWeights.current()

    response = admin_client.post(f"/admin/suppliers/ratingweights/{weights.pk}/change/",
                                 {**WEIGHTS_FORM, "stock_weight": "0.3"})

    assert response.status_code == 200
    assert "五项权重之和必须等于 1（当前为 1.2" in response.content.decode()
    weights.refresh_from_db()
    assert weights.success_weight == Decimal("0.350")


def test_staff_list_the_snapshots_and_cannot_add_one(admin_client: Client) -> None:
    supplier = SupplierFactory.create(name="甲供货")
    RatingSnapshot.objects.create(supplier=supplier, day=timezone.localdate() - timedelta(days=1),
                                  stars=Decimal("4.12"), reasons="成功率 99%")

    page = admin_client.get("/admin/suppliers/ratingsnapshot/").content.decode()

    assert "甲供货" in page
    assert "4.12" in page
    assert admin_client.get("/admin/suppliers/ratingsnapshot/add/").status_code == 403
