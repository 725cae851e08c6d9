from django.apps import AppConfig


class AppStatusConfig(AppConfig):
    name = "deployments.appstatus"
    label = "appstatus"
    verbose_name = "App status"
