"""Workers that cannot reach the broker give up and exit non-zero, so that their supervisor
(Kubernetes, systemd) restarts them, instead of retrying for the better part of an hour."""

import time

import pytest

from tests.drills.convergence import wait_until_converged
from tests.drills.figures import record_figure
from tests.stack import DiploiProcess
from tests.support import wait_for

# Reconnect attempts 2 s, then 4 s apart (Celery's steps): given up after about 6 s.
RETRIES = "2"
EXIT_WITHIN_SECONDS = 20


@pytest.mark.stack_env(BROKER_CONNECTION_MAX_RETRIES=RETRIES)
def test_workers_exit_when_the_broker_stays_away_and_work_resumes_once_restarted(
    drill_stack, private_redis, person, make_project
):
    project = make_project("django-postgres")
    person.create(project, "before")
    wait_until_converged(project, since=time.monotonic(), timeout=60, drill="setup", stack=drill_stack)

    private_redis.stop()
    down = time.monotonic()
    workers = {name: drill_stack.processes[name] for name in ("worker", "worker2")}

    def exited() -> bool:
        return all(process.poll() is not None for process in workers.values())

    wait_for(exited, timeout=EXIT_WITHIN_SECONDS, interval=0.2, what="both workers to give up on the broker")
    record_figure(
        f"broker gone, {RETRIES} reconnect attempts allowed: both workers exited in {time.monotonic() - down:.1f} s"
    )
    for name, process in workers.items():
        assert process.returncode != 0, f"{name} exited with {process.returncode}"
        assert "Unrecoverable error" in drill_stack.log(name), drill_stack.log(name)[-2000:]
    # The other processes do not need the broker to go on: pages are served, work is recorded.
    person.create(project, "while-the-broker-is-away")
    assert drill_stack.processes["web"].poll() is None
    assert drill_stack.processes["watcher"].poll() is None

    private_redis.start()
    for name in workers:
        drill_stack.restart(name)  # what the supervisor does
    back = time.monotonic()
    wait_until_converged(
        project, since=back, timeout=60, drill="workers restarted once the broker was back", stack=drill_stack
    )


def test_a_worker_started_without_a_broker_exits(transactional_db, private_redis, emulator, tmp_path):
    private_redis.stop()
    started = time.monotonic()
    worker = DiploiProcess.worker(
        kube_api_url=emulator.url,
        log=tmp_path / "worker.log",
        env={"REDIS_URL": private_redis.url(5), "BROKER_CONNECTION_MAX_RETRIES": RETRIES},
    )
    worker.spawn()
    try:
        returncode = worker.process.wait(EXIT_WITHIN_SECONDS)
    finally:
        worker.stop()
    assert returncode == 1, worker.log()[-2000:]
    record_figure(f"worker started without a broker: exited in {time.monotonic() - started:.1f} s")
    assert "Cannot connect to redis" in worker.log()
