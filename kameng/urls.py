"""URL map: storefront, staff admin, JSON API, and the built-in gateway simulator (when enabled)."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from kameng.api.urls import api

# Staff who log in at /admin/login/ land on the admin index, not on the storefront (LOGIN_REDIRECT_URL).
admin.site.login_template = "admin/login_with_next.html"

# The database out of reach answers 503 even when a middleware, not a view, met it (kameng.web.errors).
handler500 = "kameng.web.errors.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("kameng.web.urls")),
]

if settings.KAMENG_SIMULATORS_ENABLED:
    urlpatterns.append(path("sim/", include("kameng.simulators.urls")))
