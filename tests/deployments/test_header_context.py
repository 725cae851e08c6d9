"""A deployment page's header (`selectors.header_context`): on every live change's path."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments import selectors
from deployments.models import Deployment, Membership, Operation

pytestmark = pytest.mark.django_db


def test_it_shows_the_newest_operations_under_way_and_the_last_failure_from_one_query(make_project, developer):
    project = make_project("static-nginx")
    deployment = Deployment.objects.create(
        project=project, name="d", stage="production", template_version=project.template.current_version, namespace="n"
    )
    now = timezone.now()

    def operation(number: int, status: str, *, finished: int | None = None) -> Operation:
        return Operation.objects.create(
            deployment=deployment,
            kind=Operation.Kind.RESTART,
            target=f"c{number}",
            status=status,
            requested_at=now - timedelta(minutes=100 - number),
            finished_at=None if finished is None else now - timedelta(minutes=finished),
            message=f"operation {number}",
        )

    failed_long_ago = operation(1, Operation.Status.FAILED, finished=90)
    failed_last = operation(2, Operation.Status.FAILED, finished=5)  # requested before, finished after
    operation(3, Operation.Status.FAILED)  # not finished: not a failure to show yet
    operation(4, Operation.Status.SUCCEEDED, finished=1)
    under_way = [operation(n, Operation.Status.PENDING if n % 2 else Operation.Status.RUNNING) for n in range(5, 12)]
    membership = Membership.objects.get(user=developer, team=project.team)

    with CaptureQueriesContext(connection) as queries:
        context = selectors.header_context(deployment, membership)

    assert context["active_operations"] == under_way[::-1][:5]  # the newest five
    assert context["recent_failure"] == failed_last != failed_long_ago
    assert sum('FROM "deployments_operation"' in q["sql"] for q in queries.captured_queries) == 1


def test_with_nothing_under_way_and_no_failure_it_shows_neither(make_project, developer):
    project = make_project("static-nginx")
    deployment = Deployment.objects.create(
        project=project, name="d", stage="production", template_version=project.template.current_version, namespace="n"
    )
    Operation.objects.create(deployment=deployment, kind=Operation.Kind.CREATE, status=Operation.Status.SUCCEEDED)

    context = selectors.header_context(deployment, Membership.objects.get(user=developer, team=project.team))

    assert (context["active_operations"], context["recent_failure"]) == ([], None)
