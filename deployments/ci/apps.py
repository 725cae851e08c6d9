from django.apps import AppConfig


class CiConfig(AppConfig):
    name = "deployments.ci"
    label = "ci"
    verbose_name = "External CI, webhooks and repository credentials"
