"""A worker SIGKILLed while it deletes deployments: another worker takes the deletes over within seconds."""

import time

import pytest

from deployments.models import ActivityEntry, Deployment, DeploymentState, Operation
from tests.drills.convergence import unsettled, wait_until_converged
from tests.support import wait_for

TAKEOVER_TARGET_SECONDS = 30


# The dead worker's leases lapse 5 s after their last renewal (15 s by default).
@pytest.mark.stack_env(DEPLOYMENT_LEASE_SECONDS="5")
def test_the_deletes_a_killed_worker_held_complete_without_waiting_for_redelivery(
    drill_stack, private_redis, person, make_project, emulator
):
    project = make_project("django-postgres")
    for number in range(6):
        person.create(project, f"doomed-{number}", stage="development")  # each with two volumes
    wait_until_converged(project, since=time.monotonic(), timeout=60, drill="setup", stack=drill_stack)
    emulator.timing.namespace_termination_delay = 4  # deleting takes a while, as on a real cluster
    # The API answers slowly for a moment: the deletes' first requests keep their leases held.
    emulator.faults.hang(4, path_contains="/persistentvolumeclaims", duration=3)
    doomed = list(Deployment.objects.filter(project=project).order_by("pk"))[:4]
    for deployment in doomed:
        person.delete(deployment)

    def first_worker_holds_a_lease() -> bool:
        owners = Deployment.objects.filter(pk__in=[d.pk for d in doomed]).values_list("lease_owner", flat=True)
        return any(owner and owner.split(":")[0] in drill_stack.log("worker") for owner in owners)

    wait_for(first_worker_holds_a_lease, timeout=20, what="the first worker to hold a delete's lease")
    drill_stack.kill("worker")
    killed = time.monotonic()
    seconds = wait_until_converged(
        project, since=killed, timeout=60, drill="worker SIGKILLed during 4 deletes", stack=drill_stack
    )
    assert seconds < TAKEOVER_TARGET_SECONDS, f"the deletes took {seconds:.1f} s after the kill"

    # The killed worker's messages come back one day (Celery's visibility timeout): a late copy
    # finds the work done and changes nothing.
    record = _what_deleting_recorded(project)
    for deployment in doomed:
        operation = deployment.operations.get(kind=Operation.Kind.DELETE)
        private_redis.send_task("deployments.tasks.delete_deployment", operation.pk)
    time.sleep(3)
    assert _what_deleting_recorded(project) == record
    assert unsettled(project) == []
    assert "LeaseLost" not in drill_stack.log("worker2")


def _what_deleting_recorded(project):
    deleted = Deployment.objects.filter(project=project, state=DeploymentState.DELETED)
    return (
        sorted(deleted.values_list("pk", "deleted_at")),
        sorted(Operation.objects.filter(deployment__in=deleted).values_list("pk", "status", "finished_at")),
        ActivityEntry.objects.filter(deployment__in=deleted, action="deployment.deleted").count(),
    )
