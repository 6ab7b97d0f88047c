from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic.base import RedirectView

from evalhub.api import api
from evalhub.identity import urls as identity_urls
from evalhub.identity.views import set_password
from evalhub.preferences import urls as preferences_urls
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
    # Pages that do not extend base.html (the admin, the API docs) and clients that ask anyway.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg")), name="favicon"),
    path("", home, name="home"),
    path("", include("tracing.urls")),
    path("", include("tracing.detail.urls")),
    path("", include("evalhub.evaluators.urls")),
    path("", include("annotations.urls")),
    path("", include("evalhub.experiments.urls")),
    # one namespace ("tasks") for the Tasks pages and the score trends
    path("", include(([*tasks_urls.urlpatterns, *trends_urls.urlpatterns], "tasks"))),
    # one namespace ("settings") for API keys, users and roles, and one's preferences
    path("", include(([*identity_urls.urlpatterns, *preferences_urls.urlpatterns], "settings"))),
    path("", include("evalhub.monitors.urls")),
    path("", include("evalhub.calibration.urls")),
    path("", include("evalhub.alignment.urls")),
    path("", include("evalhub.budgets.urls")),
    path("", include("evalhub.shadow.urls")),
    path("", api.urls),
]

# EvalHub's own error pages (evalhub/site/errors.py): navigation, what was asked for, a way back.
handler404 = "evalhub.site.errors.handler404"
handler500 = "evalhub.site.errors.handler500"
