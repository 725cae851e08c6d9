"""Seeing and triggering builds: the Builds node, Deploy latest, the log page and its download."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from deployments.builds import services as builds
from deployments.builds.models import Build
from deployments.models import Role
from diploi_site.asgi import application

DIGEST = "sha256:" + "d" * 64


def test_the_overview_shows_the_queued_build_and_a_deploy_latest_button(developer_client, staging):
    from deployments.statuses import status_store
    from tests.deployments.builds.test_status import namespace_seen

    status_store(staging.pk, namespace_seen(staging))  # the watcher saw the namespace, nothing runs
    page = developer_client.get(reverse("deployment", args=[staging.pk])).content.decode()
    build = Build.objects.get(deployment=staging)
    assert f"Build of app at {build.short_sha} queued" in page
    assert reverse("deployment_deploy_latest", args=[staging.pk]) in page
    assert reverse("build_log", args=[staging.pk, build.pk]) in page
    assert "waiting for the first build" in page


def test_progress_shows_as_step_and_bar_and_a_failure_is_red_with_the_deployment_yellow(developer_client, staging):
    build = Build.objects.get(deployment=staging)
    builds.build_progress(build_id=build.pk, step=3, steps=5, text="[3/5] COPY requirements.txt .")
    page = developer_client.get(reverse("deployment", args=[staging.pk])).content.decode()
    assert "step 3/5: [3/5] COPY requirements.txt ." in page
    assert 'value="60"' in page
    builds.build_failed(build_id=build.pk, message="pip install: exit code: 1")
    page = developer_client.get(reverse("deployment_status", args=[staging.pk])).content.decode()
    assert 'data-node="builds" data-health="red"' in page
    assert f"Build of app at {build.short_sha} failed: pip install: exit code: 1" in page


def test_deploy_latest_builds_the_branch_head_again(developer_client, staging, repository):
    head = repository.commit("second")
    response = developer_client.post(reverse("deployment_deploy_latest", args=[staging.pk]), follow=True)
    assert response.status_code == 200
    newest = Build.objects.filter(deployment=staging).first()
    assert (newest.commit_sha, newest.trigger) == (head, "deploy_latest")
    assert f"Building app at {head[:7]}" in response.content.decode()
    assert Build.objects.filter(deployment=staging, state="cancelled").count() == 1


def test_deploy_latest_says_why_when_the_repository_cannot_be_reached(developer_client, staging):
    staging.project.repository = "https://github.invalid/acme/shop.git"
    staging.project.save(update_fields=["repository"])
    response = developer_client.post(reverse("deployment_deploy_latest", args=[staging.pk]), follow=True)
    assert "Cannot resolve branch main: https://github.invalid/acme/shop.git cannot be reached" in (
        response.content.decode()
    )
    assert Build.objects.filter(deployment=staging).count() == 1


def test_a_viewer_cannot_trigger_a_build_nor_sees_the_button(client, make_member, staging):
    client.force_login(make_member(Role.VIEWER))
    assert client.post(reverse("deployment_deploy_latest", args=[staging.pk])).status_code == 403
    assert Build.objects.filter(deployment=staging).count() == 1
    page = client.get(reverse("deployment", args=[staging.pk])).content.decode()
    assert reverse("deployment_deploy_latest", args=[staging.pk]) not in page


def test_someone_outside_the_team_sees_no_build(client, make_user, staging):
    client.force_login(make_user())
    build = Build.objects.get(deployment=staging)
    assert client.get(reverse("build_log", args=[staging.pk, build.pk])).status_code == 404
    assert client.get(reverse("build_log_download", args=[staging.pk, build.pk])).status_code == 404


def test_the_log_page_refreshes_while_running_and_keeps_the_log_afterwards(developer_client, staging):
    build = Build.objects.get(deployment=staging)
    builds.build_started(build_id=build.pk)
    builds.build_log_append(build_id=build.pk, text="=> [1/5] FROM python\n", until="2026-01-01T00:00:00.1Z")
    url = reverse("build_log", args=[staging.pk, build.pk])
    page = developer_client.get(url).content.decode()
    assert "=&gt; [1/5] FROM python" in page and 'hx-trigger="every 1s"' in page
    region = developer_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert region.lstrip().startswith('<section id="build-log"')
    builds.build_succeeded(build_id=build.pk, digest=DIGEST)
    page = developer_client.get(url).content.decode()
    assert "every 1s" not in page and DIGEST in page
    download = developer_client.get(reverse("build_log_download", args=[staging.pk, build.pk]))
    assert download["Content-Disposition"] == f'attachment; filename="build-{build.pk}-app-{build.short_sha}.log"'
    assert download.content == b"=> [1/5] FROM python\n"


def test_another_deployments_build_is_not_found_under_this_one(developer_client, staging, built_project, developer):
    from deployments import services

    other = services.deployment_create(project=built_project, name="other", stage="staging", actor=developer)
    theirs = Build.objects.get(deployment=other)
    assert developer_client.get(reverse("build_log", args=[staging.pk, theirs.pk])).status_code == 404


def test_the_stored_log_is_bounded_keeping_its_tail(staging, settings):
    settings.BUILD_LOG_MAX_BYTES = 1000
    build = Build.objects.get(deployment=staging)
    for index in range(200):
        builds.build_log_append(build_id=build.pk, text=f"line {index:03}\n")
    build.refresh_from_db()
    assert len(build.log.encode()) <= 1000 and build.log_truncated
    assert build.log.endswith("line 199\n") and build.log.startswith("line ")
    assert "line 000" not in build.log


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_a_subscribed_page_gets_the_builds_node_when_a_build_moves(make_member, team, built_project):
    from deployments import services

    user = await database_sync_to_async(make_member)(Role.VIEWER)
    owner = await database_sync_to_async(make_member)(Role.DEVELOPER)
    deployment = await database_sync_to_async(services.deployment_create)(
        project=built_project, name="staging", stage="staging", actor=owner
    )
    build = await database_sync_to_async(Build.objects.get)(deployment=deployment)
    comm = WebsocketCommunicator(
        application, f"/ws/deployments/{deployment.pk}/?tab=status", headers=[(b"origin", b"http://localhost")]
    )
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    while 'id="status-tree"' not in (await comm.receive_from(timeout=30)):
        pass
    await database_sync_to_async(builds.build_progress)(build_id=build.pk, step=2, steps=5, text="[2/5] WORKDIR /app")
    for _ in range(10):
        message = await comm.receive_from(timeout=30)
        if "step 2/5: [2/5] WORKDIR /app" in message:
            break
    else:
        raise AssertionError("the Builds node never came")
    await comm.disconnect()


def test_an_operator_builds_from_the_admin_and_cancels_there(admin_client, staging, repository):
    head = repository.commit("from the admin")
    response = admin_client.post(
        reverse("admin:deployments_deployment_changelist"),
        {"action": "build_now", "_selected_action": [staging.pk]},
        follow=True,
    )
    assert f"Building {staging}" in response.content.decode()
    newest = Build.objects.filter(deployment=staging).first()
    assert (newest.commit_sha, newest.trigger) == (head, "admin")
    assert admin_client.get(reverse("admin:builds_build_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:builds_build_change", args=[newest.pk])).status_code == 200
    response = admin_client.post(
        reverse("admin:builds_build_changelist"), {"action": "cancel", "_selected_action": [newest.pk]}, follow=True
    )
    assert f"Cancelled #{newest.pk}." in response.content.decode()
    newest.refresh_from_db()
    assert newest.state == "cancelled" and newest.message.startswith("Cancelled in the admin by")
