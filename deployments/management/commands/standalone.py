"""`python manage.py standalone`: all of Diploi in one process, for one machine."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from deployments.cluster.client import cluster_configured
from deployments.cluster.connection import get_cluster, reset_cluster
from deployments.models import Deployment, DeploymentState, Operation
from deployments.services import first_admin_create
from deployments.watcher import ClusterWatcher
from diploi_site.celery import app as celery_app
from diploi_site.embedded import EmbeddedWorker
from diploi_site.health_server import start_from_settings
from diploi_site.process import set_process_name

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Run Diploi on one machine: HTTP and websockets (daphne), a Celery worker and the cluster "
        "watcher and the SSH gateway in one process; starts the cluster emulator when no cluster is configured."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Port to listen on (default 8000).")
        parser.add_argument(
            "--ssh-host",
            default="127.0.0.1",
            help="Interface the SSH gateway listens on, at SSH_PORT (default 127.0.0.1: in standalone mode a "
            "session is a shell on this machine).",
        )

    def handle(self, *args, host: str, port: int, ssh_host: str, **options):
        # Importing daphne's server installs Twisted's asyncio reactor: do it first.
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        set_process_name("standalone")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database ready.")
        try:
            call_command("sync_templates", stdout=self.stdout, stderr=self.stderr)
        except CommandError as error:
            # A broken template file must not keep the platform down: the others loaded.
            self.stderr.write(f"Template catalog: {error}")
        created = first_admin_create()

        start_from_settings()
        emulator = self._start_emulator_if_needed()
        # Four threads: a running template action holds one until its command ends.
        worker = EmbeddedWorker(celery_app, concurrency=4)
        watcher = gateway = None
        try:
            worker.start()
            watcher = ClusterWatcher(get_cluster).start()
            gateway = self._start_gateway(ssh_host)
            if emulator is not None:
                self._reapply_everything()
            from diploi_site.asgi import application

            url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
            self._print_banner(url, created, emulator)
            server = Server(
                application=application,
                endpoints=build_endpoint_description_strings(host=host, port=port),
                signal_handlers=True,
                verbosity=0,
            )
            server.run()  # until Ctrl-C / SIGTERM
        finally:
            self.stdout.write("Stopping…")
            if gateway is not None:
                gateway.stop()
            if watcher is not None:
                watcher.stop()
            worker.stop()
            if emulator is not None:
                emulator.stop()
            self.stdout.write("Stopped.")

    def _start_emulator_if_needed(self):
        if cluster_configured():
            self.stdout.write(f"Cluster: {get_cluster().source}")
            return None
        from cluster_emulator import ClusterEmulator

        # A small watch history keeps a long-running standalone's memory low; our
        # watcher relists when its resourceVersion has left it (410), as with a real cluster.
        # Pods' files live in the data directory: a development deployment's code volume (what an SSH
        # session edits) survives restarts, as a claim does on a real cluster.
        emulator = ClusterEmulator(
            host="127.0.0.1",
            port=0,
            speed="realistic",
            history_limit=2000,
            files_root=str(settings.DATA_DIR / "emulated-pods"),
        )
        emulator.start()
        settings.KUBE_API_URL = emulator.url
        settings.CLUSTER_SIMULATED = True
        reset_cluster()
        self.stdout.write(self.style.WARNING(f"No cluster configured: using the built-in emulator at {emulator.url}"))
        return emulator

    def _start_gateway(self, host: str):
        """The SSH gateway on a thread; without it the rest still runs (the port may be taken)."""
        from deployments.ssh.gateway.server import GatewayThread

        try:
            gateway = GatewayThread(host=host, port=settings.SSH_PORT).start()
        except OSError as error:
            self.stderr.write(f"SSH gateway: cannot listen on {host}:{settings.SSH_PORT} ({error}); set SSH_PORT.")
            return None
        self.stdout.write(f"SSH gateway on {host}:{gateway.port}")
        return gateway

    def _reapply_everything(self) -> None:
        """The emulator starts empty each time: give it back every deployment the database holds."""
        from deployments.tasks import delete_deployment, reconcile_deployment

        live = Deployment.objects.live().exclude(state=DeploymentState.DELETING)
        for deployment_id in live.values_list("pk", flat=True):
            reconcile_deployment.delay(deployment_id)
        pending_deletes = Operation.objects.filter(
            kind=Operation.Kind.DELETE, status__in=(Operation.Status.PENDING, Operation.Status.RUNNING)
        )
        for operation_id in pending_deletes.values_list("pk", flat=True):
            delete_deployment.delay(operation_id)

    def _print_banner(self, url: str, created, emulator) -> None:
        self.stdout.write(self.style.SUCCESS(f"Diploi is running at {url}"))
        self.stdout.write(f"  admin: {url}admin/   data: {settings.DATA_DIR}")
        if emulator is not None:
            self.stdout.write("  cluster: simulated (see README: pointing Diploi at a real cluster)")
            self.stdout.write(
                f"  ssh: {settings.SSH_HOST}:{settings.SSH_PORT}; with the simulated cluster a session is a shell on "
                "this machine, in the emulated pod's directory"
            )
        if created:
            user, password = created
            self.stdout.write(
                self.style.WARNING(
                    f"  First start: sign in as “{user.get_username()}” with password {password}\n"
                    "  (shown once; change it under Admin → Users, or with `python manage.py changepassword admin`)"
                )
            )
        self.stdout.write("  Press Ctrl-C to stop.")
