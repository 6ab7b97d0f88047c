from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from evalhub.api import api
from evalhub.identity.views import set_password
from evalhub.site.views import home
from evalhub.tasks import urls as tasks_urls
from evalhub.trends import urls as trends_urls
from tracing.ingest.http import otlp_traces

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("set-password/<uidb64>/<token>/", set_password, name="set-password"),
    # OTLP/HTTP ingest is a plain view: raw protobuf/JSON bodies, no schema layer.
    path("v1/traces", otlp_traces, name="otlp-traces"),
    path("", home, name="home"),
    path("", include("tracing.urls")),
    path("", include("tracing.detail.urls")),
    path("", include("evalhub.evaluators.urls")),
    path("", include("annotations.urls")),
    # one namespace ("tasks") for the Tasks pages and the score trends
    path("", include(([*tasks_urls.urlpatterns, *trends_urls.urlpatterns], "tasks"))),
    path("", include("evalhub.identity.urls")),
    path("", api.urls),
]
