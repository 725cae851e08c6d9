"""What "converged" means after a fault, read from the database and the cluster."""

from __future__ import annotations

import time

from django.db import close_old_connections

from deployments.cluster.connection import get_cluster
from deployments.models import Deployment, DeploymentState, DeploymentStatus, Operation
from tests.drills.figures import record_figure

ACTIVE = (Operation.Status.PENDING, Operation.Status.RUNNING)


def unsettled(project, *, only=None) -> list[str]:
    """Everything about ``project``'s deployments (or ``only`` these) that is not yet as asked; empty once converged.

    Live deployments: applied at their desired generation, running, healthy.
    Deleted ones: their namespace and every claim gone from the cluster. No
    operation pending or running, none failed (but what a deletion overtook).
    """
    close_old_connections()
    cluster = get_cluster()
    problems = []
    deployments = Deployment.objects.filter(project=project)
    if only is not None:
        deployments = deployments.filter(pk__in=[d.pk for d in only])
    health = dict(DeploymentStatus.objects.filter(deployment__in=deployments).values_list("deployment_id", "health"))
    for deployment in deployments.order_by("pk"):
        name = deployment.name
        if deployment.state == DeploymentState.DELETED:
            if cluster.get("Namespace", deployment.namespace) is not None:
                problems.append(f"{name}: deleted, but its namespace is still in the cluster")
            claims, _ = cluster.list("PersistentVolumeClaim", label_selector=f"diploi.io/deployment={deployment.pk}")
            if claims:
                problems.append(f"{name}: deleted, but {len(claims)} claims are still in the cluster")
            continue
        if deployment.applied_generation < deployment.desired_generation:
            problems.append(f"{name}: applied {deployment.applied_generation} of {deployment.desired_generation}")
        if deployment.state != DeploymentState.RUNNING:
            problems.append(f"{name}: {deployment.state}")
        if health.get(deployment.pk) != "green":
            problems.append(f"{name}: health {health.get(deployment.pk)}")
    operations = Operation.objects.filter(deployment__in=deployments)
    for operation in operations.filter(status__in=ACTIVE).select_related("deployment"):
        problems.append(f"{operation.deployment.name}: {operation.kind} {operation.status} ({operation.message})")
    failed = operations.filter(status=Operation.Status.FAILED).exclude(deployment__state=DeploymentState.DELETED)
    for operation in failed.select_related("deployment"):
        problems.append(f"{operation.deployment.name}: {operation.kind} failed ({operation.message})")
    return problems


def wait_until_converged(project, *, since: float, timeout: float, drill: str, stack=None, only=None) -> float:
    """Wait for ``project`` (or ``only`` these deployments) to converge; record and return the seconds
    since ``since`` (a monotonic time)."""
    deadline = time.monotonic() + timeout
    problems = unsettled(project, only=only)
    while problems and time.monotonic() < deadline:
        time.sleep(0.25)
        problems = unsettled(project, only=only)
    if problems:
        logs = ""
        if stack is not None:
            logs = "".join(f"\n--- {name} ---\n{stack.log(name)[-3000:]}" for name in stack.processes)
        raise AssertionError(f"{drill}: not converged after {timeout:.0f} s: {problems[:15]}{logs}")
    seconds = time.monotonic() - since
    record_figure(f"{drill}: converged in {seconds:.1f} s")
    return seconds
