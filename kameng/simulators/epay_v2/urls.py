"""The simulated 易支付 V2 gateway, mounted at /sim/epay-v2/ (namespace `simulators:epay_v2`)."""

from django.urls import path

from kameng.simulators.epay_v2 import views

app_name = "epay_v2"

urlpatterns = [
    path("api/pay/create", views.pay_create, name="pay_create"),
    path("api/pay/query", views.pay_query, name="pay_query"),
    path("api/pay/refund", views.pay_refund, name="pay_refund"),
    path("api/pay/refundquery", views.pay_refund_query, name="pay_refund_query"),
    path("cashier/<str:trade_no>/", views.cashier, name="cashier"),
    path("cashier/<str:trade_no>/pay/", views.cashier_pay, name="cashier_pay"),
    path("cashier/<str:trade_no>/cancel/", views.cashier_cancel, name="cashier_cancel"),
]
