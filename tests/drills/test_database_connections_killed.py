"""Every PostgreSQL connection of Diploi's processes killed (`pg_terminate_backend`) while reconciles
are in the middle of their work and the watcher is in the middle of writing a status.

Only the drill's own database is touched: the server is shared with others, so it is not restarted.
"""

import time

from django.db import connection, transaction

from deployments.models import Deployment, DeploymentStatus, Operation
from tests.drills.convergence import wait_until_converged
from tests.drills.figures import record_figure
from tests.drills.people import LivePage
from tests.support import wait_for

ACTIVE = (Operation.Status.PENDING, Operation.Status.RUNNING)


def _backends_waiting_on_a_lock() -> list[int]:
    with connection.cursor() as cursor:
        # Inside a transaction, pg_stat_activity is a snapshot taken at its first use: take a fresh one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND wait_event_type = 'Lock'"
        )
        return [pid for (pid,) in cursor.fetchall()]


def _terminate_other_backends() -> int:
    """Kill every connection to this test database but the test's own; returns how many."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_everything_converges_after_the_database_connections_are_killed_mid_work(
    drill_stack, person, make_project, emulator
):
    project = make_project("django-postgres")
    for number in range(5):
        person.create(project, f"steady-{number}")
    wait_until_converged(project, since=time.monotonic(), timeout=60, drill="setup", stack=drill_stack)
    steady = list(Deployment.objects.filter(project=project).order_by("pk"))
    changing, written = steady[:3], steady[3]
    pids = {name: process.pid for name, process in drill_stack.processes.items()}
    with LivePage(person, steady[4].pk) as page:
        wait_for(lambda: page.shows(health="green", operations=False), timeout=20, what="the live page")

        with transaction.atomic():
            # Mid-status-write: the drill holds one status row, so the watcher's write of it waits
            # inside its transaction (after reading the deployment, before writing the tree).
            DeploymentStatus.objects.select_for_update().get(deployment=written)
            emulator.faults.crash(written.namespace)
            wait_for(_backends_waiting_on_a_lock, timeout=20, what="the watcher to wait on the row")
            # Mid-reconcile: applies stall, so the reconciles hold their leases with operations running.
            emulator.faults.hang(3, methods="PATCH", duration=3)
            for deployment in changing:
                person.change_environment(deployment, "1")
            wait_for(
                lambda: Operation.objects.filter(deployment__in=changing, status=Operation.Status.RUNNING).count() >= 2,
                timeout=20,
                what="the reconciles to be running",
            )
            killed = _terminate_other_backends()
            at = time.monotonic()
        emulator.faults.heal(written.namespace)
        record_figure(
            f"PostgreSQL: {killed} connections of Diploi's processes killed mid-reconcile and mid-status-write"
        )
        assert killed >= 3

        # The web process too goes on at once: the next request finds its connection dead and opens another,
        # and so does the next live render, on the same socket (its consumer checks its thread's connection).
        person.restart(steady[4])
        wait_until_converged(
            project, since=at, timeout=60, drill="PostgreSQL connections killed mid-work", stack=drill_stack
        )
        wait_for(lambda: page.showed_operations_after(at), timeout=20, what="the live page to show the restart")
    assert page.connections == 1

    # Nothing half-written: statuses are whole trees, applied work is recorded with its generation,
    # no lease is left held, and every process is the one that was started (none restarted).
    for status in DeploymentStatus.objects.filter(deployment__in=steady):
        assert status.health == status.tree["health"] and status.reason == status.tree["reason"][:300]
    for deployment in Deployment.objects.filter(pk__in=[d.pk for d in steady]):
        assert deployment.lease_owner == "" and deployment.lease_until is None
        succeeded = deployment.operations.filter(status=Operation.Status.SUCCEEDED)
        assert all(op.generation <= deployment.applied_generation for op in succeeded)
    assert not Operation.objects.filter(deployment__in=steady, status__in=ACTIVE).exists()
    for name, process in drill_stack.processes.items():
        assert process.poll() is None and process.pid == pids[name], f"{name} exited or was restarted"
    logs = "".join(drill_stack.log(name) for name in drill_stack.processes)
    assert "terminating connection due to administrator command" in logs
