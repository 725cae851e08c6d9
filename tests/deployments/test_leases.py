"""The deployment lease: renewed while its task works, lost soon after its process dies."""

import threading
import time

import pytest
from django.db import connection

from deployments import lifecycle, services
from deployments.leases import LeaseBusy, LeaseLost, deployment_lease, execution_owner, keeper
from deployments.models import Deployment, Operation
from tests.support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deployment(make_project, developer, emulator):
    return services.deployment_create(project=make_project(), name="feature-x", stage="production", actor=developer)


@pytest.fixture
def short_leases(settings):
    settings.DEPLOYMENT_LEASE_SECONDS = 1  # renewed every third of a second


def test_it_keeps_the_lease_while_the_task_works_past_its_length(deployment, short_leases):
    with deployment_lease(deployment.pk, "task-1"):
        time.sleep(2.5)
        with pytest.raises(LeaseBusy):
            with deployment_lease(deployment.pk, "task-2"):
                pass
    assert Deployment.objects.get(pk=deployment.pk).lease_owner == ""


def test_a_lease_whose_process_stopped_renewing_is_taken_over(deployment, short_leases):
    holding, done = threading.Event(), threading.Event()

    def dying_task():
        with deployment_lease(deployment.pk, "task-1"):
            keeper.release("task-1")  # what the process's death looks like to the database: no more renewals
            holding.set()
            done.wait(10)
        connection.close()

    thread = threading.Thread(target=dying_task)
    thread.start()
    holding.wait(10)
    try:
        wait_for(lambda: _takes(deployment, "task-2"), timeout=20, what="the expired lease to be taken over")
    finally:
        done.set()
        thread.join(10)


def _takes(deployment, owner) -> bool:
    try:
        with deployment_lease(deployment.pk, owner):
            return True
    except LeaseBusy:
        return False


def test_two_executions_of_one_task_never_share_the_lease(deployment):
    first, second = execution_owner("task-id"), execution_owner("task-id")  # a message delivered twice
    with deployment_lease(deployment.pk, first):
        with pytest.raises(LeaseBusy):
            with deployment_lease(deployment.pk, second):
                pass


def test_a_reconcile_that_lost_its_lease_records_nothing(deployment, emulator):
    # The apply stalls (at the database's StatefulSet: the app itself waits for its first build).
    emulator.faults.hang(1, path_contains="/statefulsets/")
    outcome = {}

    def reconcile():
        try:
            outcome["result"] = lifecycle.reconcile_run(deployment.pk, owner="stalled")
        except LeaseLost as lost:
            outcome["result"] = lost
        finally:
            connection.close()

    thread = threading.Thread(target=reconcile)
    thread.start()
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).lease_owner == "stalled", what="the apply to start")
    # Its process stalled past the lease; another task took over.
    Deployment.objects.filter(pk=deployment.pk).update(lease_owner="other")
    thread.join(20)
    emulator.faults.clear()
    assert isinstance(outcome["result"], LeaseLost)
    current = Deployment.objects.get(pk=deployment.pk)
    assert current.applied_generation == 0
    assert deployment.operations.get().status == Operation.Status.RUNNING  # still the other task's to finish


def _terminate_own_connection() -> None:
    """What a PostgreSQL restart (or an operator's pg_terminate_backend) does to this process's connection."""
    import psycopg

    own = connection.cursor().connection.info.backend_pid
    conf = connection.settings_dict
    with psycopg.connect(
        host=conf["HOST"] or "127.0.0.1", port=conf["PORT"] or 5432, user=conf["USER"], dbname=conf["NAME"]
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [own])


def test_a_lease_is_given_back_on_a_new_connection_when_the_old_one_was_killed(deployment):
    if connection.vendor != "postgresql":
        pytest.skip("kills a PostgreSQL connection")
    with pytest.raises(RuntimeError, match="the task failed"):
        with deployment_lease(deployment.pk, "task-1"):
            _terminate_own_connection()
            raise RuntimeError("the task failed")  # its own error goes on up, not the lease's
    assert Deployment.objects.get(pk=deployment.pk).lease_owner == ""
    with deployment_lease(deployment.pk, "task-2"):
        pass
