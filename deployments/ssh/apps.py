from django.apps import AppConfig


class SSHConfig(AppConfig):
    name = "deployments.ssh"
    label = "ssh"
    verbose_name = "SSH keys and sessions"
