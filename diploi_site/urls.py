from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from deployments.ci import api, hooks
from diploi_site import health

admin.site.site_header = "Diploi operations"
admin.site.site_title = "Diploi admin"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("catalog/", include("templates_catalog.urls")),
    path("hooks/github/<str:project_slug>/", hooks.github_push, name="github_push_hook"),
    path("api/v1/", include(api.urlpatterns)),
    path("", include("deployments.ci.urls")),
    path("profile/", include("deployments.ssh.urls")),
    path("", include("deployments.urls")),
]
