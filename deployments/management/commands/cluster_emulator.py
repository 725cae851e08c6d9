"""`manage.py cluster_emulator`: run the Kubernetes cluster emulator in the foreground."""

import signal
import threading

from django.core.management.base import BaseCommand

from cluster_emulator import ClusterEmulator


class Command(BaseCommand):
    help = "Serve a simulated Kubernetes cluster (see cluster_emulator/README.md) until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--speed", choices=["realistic", "fast"], default="realistic")

    def handle(self, *args, host, port, speed, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with ClusterEmulator(host=host, port=port, speed=speed) as emulator:
            self.stdout.write(f"Simulated Kubernetes cluster at {emulator.url} (speed: {speed}). Ctrl-C to stop.")
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
        self.stdout.write("Cluster emulator stopped.")
