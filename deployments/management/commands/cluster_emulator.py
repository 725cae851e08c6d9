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
        parser.add_argument(
            "--files-root",
            default=None,
            help="where emulated pods keep their files (default: a temporary directory, removed on exit)",
        )
        parser.add_argument(
            "--allow-remote-exec",
            action="store_true",
            help="serve pods/exec although --host is not loopback: exec runs commands on this machine as this user",
        )

    def handle(self, *args, host, port, speed, files_root, allow_remote_exec, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        emulator = ClusterEmulator(
            host=host, port=port, speed=speed, files_root=files_root, allow_remote_exec=allow_remote_exec or None
        )
        with emulator:
            self.stdout.write(f"Simulated Kubernetes cluster at {emulator.url} (speed: {speed}). Ctrl-C to stop.")
            self.stdout.write(f"Pods' files (exec runs commands there, on this machine): {emulator.files.root}")
            if not emulator.streams.exec_allowed:
                self.stdout.write(
                    self.style.WARNING("exec is refused: listening beyond loopback (see --allow-remote-exec)")
                )
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
        self.stdout.write("Cluster emulator stopped.")
