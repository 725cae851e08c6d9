from django.urls import path

from deployments import views
from deployments.actions import views as action_views
from deployments.builds import views as build_views
from deployments.logs import views as log_views

urlpatterns = [
    path("", views.home, name="home"),
    path("teams/switch/", views.switch_team, name="switch_team"),
    path("teams/<int:team_id>/members/", views.team_members, name="team_members"),
    path("projects/", views.project_list, name="projects"),
    path("projects/new/", views.project_create, name="project_create"),
    path("projects/<int:project_id>/", views.project_detail, name="project"),
    path("projects/<int:project_id>/settings/", views.project_settings, name="project_settings"),
    path("projects/<int:project_id>/delete/", views.project_delete, name="project_delete"),
    path("projects/<int:project_id>/deployments/new/", views.deployment_create, name="deployment_create"),
    path(
        "projects/<int:project_id>/deployments/check-name/", views.deployment_name_check, name="deployment_name_check"
    ),
    path("deployments/<int:deployment_id>/", views.deployment_overview, name="deployment"),
    path("deployments/<int:deployment_id>/status/", views.deployment_status, name="deployment_status"),
    path("deployments/<int:deployment_id>/options/", views.deployment_options, name="deployment_options"),
    path("deployments/<int:deployment_id>/activity/", views.deployment_activity, name="deployment_activity"),
    path("deployments/<int:deployment_id>/logs/", log_views.deployment_logs, name="deployment_logs"),
    path(
        "deployments/<int:deployment_id>/logs.txt", log_views.deployment_logs_download, name="deployment_logs_download"
    ),
    path("deployments/<int:deployment_id>/restart/", views.deployment_restart, name="deployment_restart"),
    path("deployments/<int:deployment_id>/retry/", views.deployment_retry, name="deployment_retry"),
    path(
        "deployments/<int:deployment_id>/describe/<slug:service_id>/",
        views.deployment_describe,
        name="deployment_describe",
    ),
    path("deployments/<int:deployment_id>/options/rename/", views.deployment_rename, name="deployment_rename"),
    path(
        "deployments/<int:deployment_id>/options/environment/",
        views.deployment_environment,
        name="deployment_environment",
    ),
    path("deployments/<int:deployment_id>/options/reveal/", views.deployment_reveal, name="deployment_reveal"),
    path("deployments/<int:deployment_id>/options/domains/", views.deployment_domains, name="deployment_domains"),
    path("deployments/<int:deployment_id>/options/addons/", views.deployment_addons, name="deployment_addons"),
    path("deployments/<int:deployment_id>/options/enabled/", views.deployment_toggle, name="deployment_toggle"),
    path("deployments/<int:deployment_id>/delete/", views.deployment_delete, name="deployment_delete"),
    path(
        "deployments/<int:deployment_id>/deploy-latest/",
        build_views.deployment_deploy_latest,
        name="deployment_deploy_latest",
    ),
    path("deployments/<int:deployment_id>/actions/run/", action_views.action_run_request, name="action_run_request"),
    path("deployments/<int:deployment_id>/actions/confirm/", action_views.action_confirm, name="action_confirm"),
    path("deployments/<int:deployment_id>/actions/<int:run_id>/", action_views.action_run_page, name="action_run"),
    path(
        "deployments/<int:deployment_id>/actions/<int:run_id>/cancel/",
        action_views.action_run_cancel,
        name="action_run_cancel",
    ),
    path(
        "deployments/<int:deployment_id>/actions/<int:run_id>/output.txt",
        action_views.action_run_output,
        name="action_run_output",
    ),
    path("deployments/<int:deployment_id>/builds/<int:build_id>/", build_views.build_log, name="build_log"),
    path(
        "deployments/<int:deployment_id>/builds/<int:build_id>/log.txt",
        build_views.build_log_download,
        name="build_log_download",
    ),
]
