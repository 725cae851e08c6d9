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
        wait_for(lambda: _takes(deployment, "task-2"), timeout=5, what="the expired lease to be taken over")
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
    emulator.faults.hang(1, path_contains="/deployments/")  # the apply stalls
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
