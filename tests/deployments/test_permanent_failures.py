"""A desired state the cluster refuses for good is not retried forever (issue 15, item 10): the
deployment records it, the sweeper leaves it alone, the page says so and offers a retry."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from deployments import services
from deployments.models import ActivityEntry, Deployment, Role
from deployments.sweeper import Sweeper
from tests.support import wait_for

TOO_LONG = 'Secret "app-env" is invalid: data: Too long: must have at most 1048576 bytes'

pytestmark = pytest.mark.django_db(transaction=True)


def failures(deployment) -> int:
    return ActivityEntry.objects.filter(deployment=deployment, action="deployment.apply_failed").count()


@pytest.fixture
def refused(emulator, worker, make_project, developer):
    """A production deployment whose env Secret the API server refuses (422), until the fault is cleared."""
    emulator.faults.fail_requests(status=422, path_contains="/secrets/app-env", methods="PATCH", message=TOO_LONG)
    deployment = services.deployment_create(
        project=make_project("django-postgres"), name="big", stage="production", actor=developer
    )
    wait_for(lambda: failures(deployment) == 1, timeout=30, what="the first apply to fail")
    return Deployment.objects.get(pk=deployment.pk)


def test_it_records_the_permanent_failure_and_the_sweeper_leaves_it_alone(refused, emulator, developer, make_project):
    assert refused.permanently_failed
    assert refused.failed_generation == refused.desired_generation
    assert TOO_LONG in refused.failure_reason
    # A deployment that is merely behind is still picked up by the sweeper (so this test can fail).
    behind = services.deployment_create(
        project=make_project("static-nginx"), name="behind", stage="production", actor=developer
    )
    wait_for(lambda: Deployment.objects.get(pk=behind.pk).up_to_date, timeout=30, what="the other deployment")
    Deployment.objects.filter(pk=behind.pk).update(desired_generation=5)

    # The sweeper, as the watcher runs it, a few minutes on: both are long quiet and overdue.
    later = timezone.now() + timedelta(minutes=5)
    sweeper = Sweeper()
    assert sweeper.sweep(now=later).get("lagging reconcile") == [behind.pk]
    wait_for(lambda: Deployment.objects.get(pk=behind.pk).applied_generation == 5, timeout=30, what="the sweep")
    for minutes in range(6, 10):
        assert refused.pk not in sum(Sweeper().sweep(now=timezone.now() + timedelta(minutes=minutes)).values(), [])
    time.sleep(1)

    assert failures(refused) == 1


def test_a_retry_or_a_change_tries_again(refused, emulator, client, developer):
    client.force_login(developer)
    client.post(reverse("deployment_retry", args=[refused.pk]))
    assert not Deployment.objects.get(pk=refused.pk).permanently_failed
    wait_for(lambda: failures(refused) == 2, timeout=30, what="the retry to fail again")

    emulator.faults.clear()
    services.deployment_update(deployment=refused, actor=developer, size="medium")

    wait_for(lambda: Deployment.objects.get(pk=refused.pk).up_to_date, timeout=30, what="the change to apply")
    assert not Deployment.objects.get(pk=refused.pk).permanently_failed


def test_the_page_says_so_and_offers_developers_a_retry(refused, client, developer, make_member):
    client.force_login(developer)
    page = client.get(reverse("deployment", args=[refused.pk])).content.decode()
    assert "trying again will not help: " + TOO_LONG.replace('"', "&quot;") in page
    assert reverse("deployment_retry", args=[refused.pk]) in page

    client.force_login(make_member(Role.VIEWER))
    page = client.get(reverse("deployment", args=[refused.pk])).content.decode()
    assert "trying again will not help" in page
    assert reverse("deployment_retry", args=[refused.pk]) not in page
    assert client.post(reverse("deployment_retry", args=[refused.pk])).status_code == 403
