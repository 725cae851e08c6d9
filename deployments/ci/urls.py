from django.urls import path

from deployments.ci import views

urlpatterns = [
    path("projects/<int:project_id>/builds/token/", views.ci_build_token, name="ci_build_token"),
    path("projects/<int:project_id>/builds/webhook/", views.ci_webhook_secret, name="ci_webhook_secret"),
    path("projects/<int:project_id>/builds/deploy-key/", views.ci_deploy_key, name="ci_deploy_key"),
    path("projects/<int:project_id>/builds/repository-token/", views.ci_repository_token, name="ci_repository_token"),
    path("projects/<int:project_id>/builds/runner/", views.ci_build_runner, name="ci_build_runner"),
    path("projects/<int:project_id>/builds/diploi.yml", views.ci_workflow, name="ci_workflow"),
]
