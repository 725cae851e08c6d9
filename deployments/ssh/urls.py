from django.urls import path

from deployments.ssh import views

urlpatterns = [
    path("", views.profile, name="profile"),
    path("keys/remove/", views.key_remove, name="ssh_key_remove"),
]
