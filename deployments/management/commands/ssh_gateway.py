"""`python manage.py ssh_gateway`: the SSH gateway as its own process (run any number behind one Service)."""

from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from deployments.cluster.client import cluster_configured
from diploi_site.health_server import start_from_settings
from diploi_site.process import set_process_name


def parse_listen(value: str) -> tuple[str, int]:
    """ "host:port", "[::]:port" or ":port" -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CommandError(f"SSH_LISTEN must be host:port (e.g. 0.0.0.0:2222), not {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - listening everywhere is the point


class Command(BaseCommand):
    help = "Run the SSH gateway: `ssh <component>.<deployment>.<project>@SSH_HOST` into a deployment's container."

    def add_arguments(self, parser):
        parser.add_argument("--listen", default=None, help="host:port to listen on (default: SSH_LISTEN).")

    def handle(self, *args, listen: str | None, **options):
        from deployments.ssh.gateway.server import Gateway

        set_process_name("ssh-gateway")
        host, port = parse_listen(listen or settings.SSH_LISTEN)
        if not cluster_configured():
            raise CommandError("No Kubernetes cluster is configured (KUBE_API_URL, KUBECONFIG or in-cluster).")
        start_from_settings()

        async def serve() -> None:
            gateway = await Gateway(host=host, port=port).start()
            self.stdout.write(f"SSH gateway on {host}:{gateway.port}. Ctrl-C to stop.")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            try:
                await stop.wait()
            finally:
                await gateway.stop()

        try:
            asyncio.run(serve())
        except OSError as error:
            raise CommandError(f"The SSH gateway cannot listen on {host}:{port}: {error}") from error
        self.stdout.write("Stopped.")
