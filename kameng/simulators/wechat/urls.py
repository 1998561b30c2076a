"""The simulated WeChat Pay, mounted at /sim/wechat/ (its API root): the v3 paths under it match the real ones."""

from django.urls import path

from kameng.simulators.wechat import views

app_name = "sim_wechat"

urlpatterns = [
    path("v3/pay/transactions/native", views.native_order, name="native_order"),
    path("v3/pay/transactions/out-trade-no/<str:out_trade_no>", views.transaction_query, name="transaction_query"),
    path("v3/pay/transactions/out-trade-no/<str:out_trade_no>/close", views.transaction_close,
         name="transaction_close"),
    path("v3/refund/domestic/refunds", views.refund_create, name="refund_create"),
    path("v3/refund/domestic/refunds/<str:out_refund_no>", views.refund_query, name="refund_query"),
    path("scan/<str:transaction_id>/", views.scan, name="scan"),
    path("scan/<str:transaction_id>/pay/", views.scan_pay, name="scan_pay"),
]
