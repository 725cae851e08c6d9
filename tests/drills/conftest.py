"""Fault drills: the scaled-out stack (PostgreSQL, Redis, daphne, two Celery workers,
the watcher, the emulator) under the faults of a real installation.

Each drill drives Diploi as its users do (HTTP to daphne, a live page over a
websocket), injects one fault, and measures how long everything takes to
converge again. They need the scaled-out stack: skipped on a newcomer's
machine without REDIS_URL, failed in CI. Each prints its figure, and the
suite's summary lists them all.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import FAST_STATUS, need_service
from tests.drills.figures import FIGURES
from tests.drills.people import Person
from tests.stack import DiploiStack
from tests.support import free_port, wait_for

# Work whose task was lost (Redis restarted with nothing kept, a message the broker refused) is
# sent again this long after it was due (15 s by default): what a drill waits for, not what it checks.
DRILL_ENV = {"LOST_TASK_SECONDS": "5"}


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("fault drills")
        for line in FIGURES:
            terminalreporter.write_line(line)


class PrivateRedis:
    """A redis-server of the drill's own, to stop and start without touching anyone else's.

    Like the Redis of a real installation that keeps nothing on disk: a restart loses every key.
    """

    def __init__(self, log_dir):
        self.port = free_port()
        self.log_path = log_dir / "redis.log"
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=open(self.log_path, "a"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
        )
        wait_for(self._answers, timeout=10, what=f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        import redis

        return redis.Redis(port=self.port, socket_timeout=1).ping()

    def send_task(self, name: str, *args, db: int = 5) -> None:
        """Put one more message for a Diploi task on this Redis: what a late redelivery looks like."""
        from diploi_site.celery import app

        with app.connection_for_write(self.url(db)) as connection:
            app.send_task(name, args=args, connection=connection)

    def stop(self) -> None:
        """Stop it at once, saving nothing."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path):
    if not os.environ.get("REDIS_URL"):
        need_service("fault drills run on the scaled-out stack (set REDIS_URL and DATABASE_URL; CI does)")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        need_service("fault drills run on PostgreSQL (set DATABASE_URL; CI does)")
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def drill_stack(transactional_db, private_redis, emulator, catalog, tmp_path, request):
    """Diploi scaled out on the drill's own Redis: daphne, two workers, the watcher, the test's emulator.

    A test may pass settings of its own with ``@pytest.mark.stack_env(NAME="value")``.
    """
    marker = request.node.get_closest_marker("stack_env")
    env = {**FAST_STATUS, **DRILL_ENV, "REDIS_URL": private_redis.url(5), **(marker.kwargs if marker else {})}
    stack = DiploiStack(data_dir=tmp_path, kube_api_url=emulator.url, env=env, workers=2).start()
    yield stack
    stack.stop()


@pytest.fixture
def person(drill_stack, make_member):
    """A team admin signed in to the drill's Diploi."""
    return Person(drill_stack.url, make_member("admin"))
