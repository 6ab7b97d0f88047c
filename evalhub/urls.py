from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from evalhub.api import api
from evalhub.views import home
from evalhub.views_settings import set_password
from tracing.views_otlp import otlp_traces

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("set-password/<uidb64>/<token>/", set_password, name="set-password"),
    # OTLP/HTTP ingest is a plain view: raw protobuf/JSON bodies, no schema layer.
    path("v1/traces", otlp_traces, name="otlp-traces"),
    path("", home, name="home"),
    path("", include("tracing.urls")),
    path("", include("tracing.urls_detail")),
    path("", include("evalhub.urls_hub")),
    path("", include("annotations.urls")),
    path("", include("evalhub.urls_tasks")),
    path("", include("evalhub.urls_settings")),
    path("", include("evalhub.calibration.urls")),
    path("", include("evalhub.alignment.urls")),
    path("", include("evalhub.budgets.urls")),
    path("", api.urls),
]
