"""Suppliers' machine-to-machine URLs (namespace "suppliers"), included at the site root: what upstreams are
configured with."""

from django.urls import path

from kameng.suppliers import push_views

app_name = "suppliers"

urlpatterns = [
    path("suppliers/push/<int:supplier_id>/", push_views.supplier_push, name="push"),
]
