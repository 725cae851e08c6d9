from django.apps import AppConfig


class HostsConfig(AppConfig):
    name = "deployments.hosts"
    label = "hosts"
    verbose_name = "Public hosts and custom domains"
