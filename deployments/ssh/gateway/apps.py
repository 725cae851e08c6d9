from django.apps import AppConfig


class SSHGatewayConfig(AppConfig):
    name = "deployments.ssh.gateway"
    label = "ssh_gateway"
    verbose_name = "SSH gateway"
