"""Suppliers' machine-to-machine URLs (namespace "suppliers"), included at the site root: what upstreams are
configured with (kameng.suppliers.dispatch.topup_notify_url builds the callback's): they never change."""

from django.urls import path

from kameng.suppliers import push_views, views

app_name = "suppliers"

urlpatterns = [
    path("suppliers/callback/<int:supplier_id>/", views.topup_callback, name="callback"),
    path("suppliers/push/<int:supplier_id>/", push_views.supplier_push, name="push"),
]
