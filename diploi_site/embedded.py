"""Background machinery run inside one process for the embedded (standalone) mode.

Scaled out, the same work runs as `celery -A diploi_site worker` and
`python manage.py watch_cluster`; here each is a thread of the web process.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery
from celery.worker import WorkController

logger = logging.getLogger(__name__)


class EmbeddedWorker:
    """A Celery worker on a thread, consuming the in-memory transport of this process."""

    def __init__(self, app: Celery, concurrency: int = 2):
        self.app = app
        self.concurrency = concurrency
        self._controller: WorkController | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self, timeout: float = 30) -> None:
        app = self.app
        app.finalize()
        app.set_current()
        app.set_default()
        app.loader.import_default_modules()
        ready = self._ready

        class _Controller(WorkController):
            def on_consumer_ready(self, consumer):
                ready.set()

        self._controller = _Controller(
            app=app,
            pool="threads",
            concurrency=self.concurrency,
            hostname="embedded@diploi",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            loglevel=logging.INFO,
        )
        self._thread = threading.Thread(target=self._controller.start, name="celery-worker", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the embedded Celery worker did not start")
        logger.info("embedded Celery worker started (%s threads)", self.concurrency)

    def stop(self, timeout: float = 15) -> None:
        if self._controller is None:
            return
        self._controller.stop(in_sighandler=False)
        if self._thread is not None:
            self._thread.join(timeout)
        self._controller = None
