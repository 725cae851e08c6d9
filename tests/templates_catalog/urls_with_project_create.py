"""The site's URLs plus a stand-in `project_create` (the project wizard, built elsewhere), for page tests."""

from django.http import HttpResponse
from django.urls import path

from diploi_site.urls import urlpatterns as site_urlpatterns

urlpatterns = [
    *site_urlpatterns,
    path("test-only/projects/new/", lambda request: HttpResponse("wizard"), name="project_create"),
]
