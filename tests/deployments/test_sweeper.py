"""The sweeper: pending work whose task was lost is sent again, and only that."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments import services
from deployments.models import Deployment, Operation
from deployments.sweeper import PendingWork, Sweeper, register, registered
from tests.support import observed_until_done, wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment(make_project, developer):
    return services.deployment_create(
        project=make_project("fastapi-redis"), name="feature-x", stage="development", actor=developer, addons=["redis"]
    )


def later(seconds: float = 60):
    return timezone.now() + timedelta(seconds=seconds)


def test_it_leaves_work_alone_until_it_is_overdue(deployment):
    assert Sweeper().sweep() == {}  # just asked for: its task has LOST_TASK_SECONDS to show up
    assert Sweeper().sweep(now=later()) == {"reconcile": [deployment.pk]}


def test_it_leaves_work_alone_while_a_task_holds_the_lease(deployment):
    Deployment.objects.filter(pk=deployment.pk).update(lease_owner="task-1", lease_until=later(120))
    assert Sweeper().sweep(now=later()) == {}


def test_it_sends_a_lost_task_once_then_waits_for_it(deployment):
    sweeper = Sweeper()
    assert sweeper.sweep(now=later()) == {"reconcile": [deployment.pk]}
    assert sweeper.sweep() == {}  # sent just now: due again only after LOST_TASK_SECONDS
    operation = deployment.operations.get()
    assert operation.due_at > timezone.now()


def test_it_sends_lost_deletes_and_storage_deletes_again(deployment, developer):
    services.deployment_update(deployment=deployment, actor=developer, addons=[], delete_storage_of=["redis"])
    storage = Operation.objects.get(deployment=deployment, kind=Operation.Kind.DELETE_STORAGE)
    delete = services.deployment_delete(deployment=deployment, actor=developer)
    found = Sweeper().sweep(now=later())
    assert found == {"delete": [delete.pk], "storage delete": [storage.pk]}  # a deleting one is not reconciled


def test_it_reconciles_a_lagging_deployment_with_no_operation_left_now_and_then(deployment):
    deployment.operations.update(status=Operation.Status.FAILED)  # its task gave up
    Deployment.objects.filter(pk=deployment.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    sweeper = Sweeper()
    assert sweeper.sweep() == {"lagging reconcile": [deployment.pk]}
    assert sweeper.sweep() == {}  # not at every sweep


def test_other_kinds_of_work_hook_in(deployment):
    sent = []
    register(PendingWork("test work", find_lost=lambda now: [7], send_again=sent.append))
    try:
        assert Sweeper().sweep()["test work"] == [7]
        assert sent == [7]
    finally:
        from deployments import sweeper

        sweeper._REGISTRY.pop("test work")
    assert "test work" not in {work.name for work in registered()}


@pytest.mark.django_db(transaction=True)  # the worker reads the rows on a connection of its own
def test_a_lost_reconcile_converges_once_sent_again(deployment, request, settings):
    from diploi_site.celery import app as celery_app

    celery_app.control.purge()  # the broker lost the task the request sent
    request.getfixturevalue("worker")
    Sweeper().sweep(now=later())
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).applied_generation == 1, timeout=30, what="the reconcile")
    # Applied and waiting for the cluster: not lost, so not sent again.
    assert Sweeper().sweep(now=later()).get("reconcile", []) == []
    assert observed_until_done(deployment.operations.get()).status == Operation.Status.SUCCEEDED


def test_when_the_cluster_is_back_it_sends_the_work_waiting_in_a_backoff_at_once(deployment, developer):
    operation = deployment.operations.get()
    assert Sweeper().send_waiting() == {"reconcile": [deployment.pk]}  # just sent: its task may be queued
    Operation.objects.filter(pk=operation.pk).update(due_at=later(90))  # a retry scheduled after a long backoff
    assert Sweeper().send_waiting() == {"reconcile": [deployment.pk]}
    Deployment.objects.filter(pk=deployment.pk).update(lease_owner="task-1", lease_until=later(120))
    assert Sweeper().send_waiting() == {}  # a task is at work on it right now
    Deployment.objects.filter(pk=deployment.pk).update(lease_owner="", lease_until=None)
    delete = services.deployment_delete(deployment=deployment, actor=developer)
    Operation.objects.filter(pk=delete.pk).update(due_at=later(90))
    assert Sweeper().send_waiting() == {"delete": [delete.pk]}  # a deleting one is not reconciled
    Operation.objects.filter(pk=delete.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    assert Sweeper().send_waiting() == {}  # overdue is the sweep's business, not waiting
