"""Storing a computed status as the watcher does (`statuses.status_store` with the batch's row and
tree): one statement per change, and never over a status another writer stored since it was read."""

import pytest
from django.db.models import Prefetch

from deployments import services
from deployments.cluster.status import Observation
from deployments.models import Deployment, DeploymentStatus, Operation
from deployments.statuses import status_store
from deployments.watcher import ACTIVE_STATUSES


@pytest.fixture
def deployment(make_project, developer):
    return services.deployment_create(
        project=make_project("django-postgres"), name="feature-x", stage="development", actor=developer
    )


def namespace_seen(deployment) -> Observation:
    meta = {"name": deployment.namespace, "creationTimestamp": "2026-12-02T12:00:00Z"}
    return Observation(namespace={"kind": "Namespace", "metadata": meta, "status": {"phase": "Active"}})


def batch_row(deployment) -> Deployment:
    """The deployment as the watcher's batch reads it: its stored status and its operations under way."""
    under_way = Operation.objects.filter(status__in=ACTIVE_STATUSES)
    rows = Deployment.objects.select_related("project__team", "status")
    return rows.prefetch_related(Prefetch("operations", under_way, to_attr="active_operations")).get(pk=deployment.pk)


def settled(deployment) -> Deployment:
    """With its first status stored and the operation that created it ended."""
    status_store(deployment.pk, namespace_seen(deployment))
    Operation.objects.filter(deployment=deployment).update(status=Operation.Status.SUCCEEDED)
    row = batch_row(deployment)
    assert row.active_operations == [] and row.status.tree
    return row


def test_a_change_of_a_deployment_with_no_operation_under_way_is_one_statement(
    deployment, django_assert_num_queries, django_capture_on_commit_callbacks
):
    row = settled(deployment)
    previous = row.status.tree
    tree = {**previous, "health": "red", "reason": "Django down: app-0: CrashLoopBackOff"}

    with django_capture_on_commit_callbacks() as published, django_assert_num_queries(1):
        assert status_store(deployment.pk, namespace_seen(deployment), deployment=row, computed=(previous, tree))
    status = DeploymentStatus.objects.get(deployment=deployment)
    assert (status.health, status.reason, status.tree) == ("red", tree["reason"], tree)
    assert published  # the pages are told


def test_a_status_another_writer_stored_since_it_was_read_is_never_overwritten(deployment):
    row = settled(deployment)
    previous = row.status.tree
    # Meanwhile another writer (a second watcher, a build's refresh) stores a newer status.
    newer = {**previous, "reason": "a newer status"}
    DeploymentStatus.objects.filter(deployment=deployment).update(tree=newer, reason=newer["reason"])
    stale = {**previous, "health": "red", "reason": "the status computed from the older row"}

    status_store(deployment.pk, namespace_seen(deployment), deployment=row, computed=(previous, stale))
    status = DeploymentStatus.objects.get(deployment=deployment)
    # Computed again from the row it holds now (which carries its stamps): the stale tree is gone.
    assert status.reason != stale["reason"] and status.health != "red"
    assert status.tree["since"] == newer["since"]
