"""The simulated UnionPay, mounted at /sim/unionpay/ (inside the "simulators" URL namespace); its API root is
/sim/unionpay/gateway/api/, like https://gateway.95516.com/gateway/api/."""

from django.urls import URLPattern, path

from kameng.simulators.unionpay import views

urlpatterns: list[URLPattern] = [
    path("gateway/api/frontTransReq.do", views.front_trans, name="unionpay_front_trans"),
    path("gateway/api/queryTrans.do", views.query_trans, name="unionpay_query_trans"),
    path("gateway/api/backTransReq.do", views.back_trans, name="unionpay_back_trans"),
    path("cashier/<str:query_id>/", views.cashier, name="unionpay_cashier"),
    path("cashier/<str:query_id>/pay/", views.cashier_pay, name="unionpay_cashier_pay"),
    path("cashier/<str:query_id>/fail/", views.cashier_fail, name="unionpay_cashier_fail"),
]
