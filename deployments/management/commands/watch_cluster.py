"""`python manage.py watch_cluster`: the watcher as its own process (run any number)."""

import signal

from django.core.management.base import BaseCommand, CommandError

from deployments.cluster.connection import get_cluster
from deployments.cluster.errors import ClusterNotConfigured
from deployments.watcher import ClusterWatcher
from diploi_site.health_server import start_from_settings
from diploi_site.process import set_process_name


class Command(BaseCommand):
    help = "Watch the cluster: keep deployment statuses and CPU history current and push them to live pages."

    def handle(self, *args, **options):
        set_process_name("watcher")
        start_from_settings()
        try:
            cluster = get_cluster()
        except ClusterNotConfigured as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Watching {cluster.source}. Ctrl-C to stop.")
        watcher = ClusterWatcher(get_cluster)
        signal.signal(signal.SIGTERM, lambda *_: watcher.stop_event.set())
        try:
            watcher.run_forever()
        except KeyboardInterrupt:
            watcher.stop()
        self.stdout.write("Stopped.")
