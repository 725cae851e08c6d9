"""A build's effect on health is part of the stored status: the project list, the team's counts and
the page read one health. The watcher's tree is stored by `status_store`, a build row moving re-derives
it (`status_builds_refresh`, on commit), and the lists read the stored row."""

from django.urls import reverse

from deployments.builds import services as builds
from deployments.builds.models import Build
from deployments.cluster.status import Observation
from deployments.models import DeploymentStatus
from deployments.statuses import status_store


def namespace_seen(deployment) -> Observation:
    """What the watcher sees of a new staging deployment: its namespace, nothing running yet."""
    meta = {"name": deployment.namespace, "creationTimestamp": "2026-12-02T12:00:00Z"}
    return Observation(namespace={"kind": "Namespace", "metadata": meta, "status": {"phase": "Active"}})


def stored(deployment) -> tuple[str, str]:
    status = DeploymentStatus.objects.get(deployment=deployment)
    return status.health, status.reason


def test_the_first_build_failing_turns_the_stored_status_red_and_a_new_build_yellow_again(
    staging, developer_client, django_capture_on_commit_callbacks
):
    status_store(staging.pk, namespace_seen(staging))
    health, reason = stored(staging)  # (PostgreSQL is still being created: "and 1 more")
    assert health == "yellow" and reason.startswith("Django: waiting for the first build")
    (build,) = Build.objects.filter(deployment=staging)

    with django_capture_on_commit_callbacks(execute=True):
        builds.build_failed(build_id=build.pk, message="pip install: exit code: 1")
    failure = f"Build of app at {build.short_sha} failed: pip install: exit code: 1"
    health, reason = stored(staging)
    assert (health, reason) == ("red", f"{failure}; Django cannot run until a build succeeds")
    tree = DeploymentStatus.objects.get(deployment=staging).tree
    assert tree["nodes"]["builds"]["health"] == "red"
    # Every view reads that one health: the project's deployments, the team's projects, the page.
    project_page = developer_client.get(reverse("project", args=[staging.project_id])).content.decode()
    assert failure in project_page
    assert "1 failing" in developer_client.get(reverse("projects")).content.decode()
    page = developer_client.get(reverse("deployment_status", args=[staging.pk])).content.decode()
    assert 'data-health="red"' in page and failure in page

    with django_capture_on_commit_callbacks(execute=True):
        builds.builds_request(deployment=staging, trigger="deploy_latest", triggered_by=None)
    health, reason = stored(staging)
    assert health == "yellow" and reason.startswith("Django: waiting for the first build")
    assert "failing" not in developer_client.get(reverse("projects")).content.decode()
    assert "1 degraded" in developer_client.get(reverse("projects")).content.decode()


def test_the_watcher_storing_a_tree_reads_the_build_rows_too(staging):
    (build,) = Build.objects.filter(deployment=staging)
    builds.build_failed(build_id=build.pk, message="no space left on device")  # no status row yet: nothing stored
    assert not DeploymentStatus.objects.filter(deployment=staging).exists()
    status_store(staging.pk, namespace_seen(staging))
    health, reason = stored(staging)
    assert health == "red" and reason.startswith(f"Build of app at {build.short_sha} failed: no space left on device")


def test_a_build_moving_writes_the_status_only_when_it_changes_and_never_before_the_first_one(
    staging, django_capture_on_commit_callbacks
):
    from deployments.statuses import status_builds_refresh

    assert status_builds_refresh(staging.pk) is False  # the watcher has not stored a status yet
    status_store(staging.pk, namespace_seen(staging))
    (build,) = Build.objects.filter(deployment=staging)
    with django_capture_on_commit_callbacks(execute=True):
        builds.build_progress(build_id=build.pk, step=2, steps=5, text="[2/5] RUN pip install")
    node = DeploymentStatus.objects.get(deployment=staging).tree["nodes"]["builds"]
    assert node["reason"] == f"Building app at {build.short_sha}, step 2/5: [2/5] RUN pip install"
    assert status_builds_refresh(staging.pk) is False  # nothing moved since
