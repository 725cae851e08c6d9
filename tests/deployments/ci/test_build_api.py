"""The external CI API (docs/api.md): a build token's project only, every input checked, the same
state machine and rollout as Diploi's own builder."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from deployments import services as deployment_services
from deployments.builds import services as builds
from deployments.builds.models import Build
from deployments.ci import services
from deployments.models import Deployment, Role

DIGEST = "sha256:" + "c" * 64
RUN_URL = "https://github.com/acme/shop/actions/runs/42"


@pytest.fixture
def token(external_project, admin_member):
    return services.build_token_rotate(project=external_project, actor=admin_member)


@pytest.fixture
def staging(external_project, admin_member):
    return deployment_services.deployment_create(
        project=external_project, name="staging", stage="staging", actor=admin_member
    )


def call(path, body=None, *, token=None, method="post", raw=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    client = Client(enforce_csrf_checks=True)
    if method == "get":
        return client.get(f"/api/v1/{path}", **headers)
    data = raw if raw is not None else json.dumps(body or {})
    return client.post(f"/api/v1/{path}", data, content_type="application/json", **headers)


def started(token, **body):
    return call("builds/started", body, token=token)


# ----------------------------------------------------------------------------- the happy path


def test_a_ci_reports_a_build_from_start_to_rollout(staging, token, repository):
    queued = Build.objects.get(deployment=staging)
    assert (queued.runner, queued.state) == ("external", "queued")

    response = started(token, branch="main", component="app", commit=repository.first, run_url=RUN_URL)
    assert response.status_code == 201
    (build,) = response.json()["builds"]
    assert build["id"] == queued.pk  # the waiting build, not a new one
    assert build["state"] == "running" and build["run_url"] == RUN_URL
    assert build["image"] == f"{queued.image}:{repository.first}"

    progress = call(f"builds/{queued.pk}/progress", {"step": 2, "steps": 3, "text": "Building"}, token=token)
    assert progress.status_code == 200 and progress.json()["step"] == 2

    done = call(f"builds/{queued.pk}/succeeded", {"digest": DIGEST}, token=token)
    assert done.status_code == 200 and done.json()["state"] == "succeeded"
    staging.refresh_from_db()
    assert staging.built_images == {"app": f"{queued.image}@{DIGEST}"}
    assert staging.built_commit == repository.first
    assert call(f"builds/{queued.pk}", token=token, method="get").json()["digest"] == DIGEST


def test_reporting_a_start_twice_gives_the_same_build(staging, token, repository):
    first = started(token, deployment="staging", component="app", commit=repository.first).json()["builds"]
    again = started(token, deployment=staging.pk, component="app", commit=repository.first).json()["builds"]
    assert [b["id"] for b in first] == [b["id"] for b in again]
    assert Build.objects.filter(deployment=staging).count() == 1


def test_a_start_for_a_new_commit_requests_a_build_and_cancels_the_older_one(staging, token, repository):
    newer = repository.commit("second")
    response = started(token, deployment="staging", component="app", commit=newer, external_id="run-7")
    assert response.status_code == 201
    (build,) = response.json()["builds"]
    row = Build.objects.get(pk=build["id"])
    assert (row.commit_sha, row.trigger, row.external_id, row.state) == (newer, "api", "run-7", "running")
    assert Build.objects.get(deployment=staging, commit_sha=repository.first).state == "cancelled"


def test_the_ci_may_tell_the_commit_message_and_the_build_shows_its_first_line(staging, token, repository):
    newer = repository.commit("Fix the cart")
    message = "Fix the cart\n\nThe total was off by one."
    (build,) = started(token, deployment="staging", component="app", commit=newer, commit_message=message).json()[
        "builds"
    ]
    assert Build.objects.get(pk=build["id"]).commit_message == "Fix the cart"
    # A build a push requested without a message (no head commit in the event) gets the CI's.
    (pushed,) = services.push_received(project=staging.project, branch="main", commit_sha=repository.commit("Later"))
    assert pushed.commit_message == ""
    started(token, branch="main", component="app", commit=pushed.commit_sha, commit_message="Later\n")
    assert Build.objects.get(pk=pushed.pk).commit_message == "Later"


def test_a_failed_report_keeps_the_last_good_build_serving(staging, token, repository):
    first = Build.objects.get(deployment=staging)
    call(f"builds/{first.pk}/succeeded", {"digest": DIGEST}, token=token)
    (second,) = started(token, deployment="staging", component="app", commit=repository.commit("b")).json()["builds"]

    failed = call(f"builds/{second['id']}/failed", {"message": "Tests failed"}, token=token)
    assert failed.status_code == 200 and failed.json()["message"] == "Tests failed"
    assert Deployment.objects.get(pk=staging.pk).built_images == {"app": f"{first.image}@{DIGEST}"}


def test_a_branch_nobody_follows_starts_nothing(staging, token, repository):
    response = started(token, branch="feature", component="app", commit=repository.first)
    assert response.status_code == 200 and response.json() == {"builds": []}


# ----------------------------------------------------------------------------- 401, 404, 409, 400


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer ", "Bearer dpl_not-a-token", "Bearer " + "x" * 5000])
def test_without_a_valid_token_it_is_401(staging, header):
    client = Client()
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.post("/api/v1/builds/started", "{}", content_type="application/json", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]


def test_a_rotated_token_is_401(staging, token, admin_member, repository):
    services.build_token_rotate(project=staging.project, actor=admin_member)
    assert started(token, branch="main", component="app", commit=repository.first).status_code == 401


def test_a_token_sees_only_its_own_project(staging, token, make_project, repository, admin_member, team):
    other = make_project("django-postgres", slug="other")
    other.repository = repository.url
    other.build_runner = "external"
    other.save(update_fields=["repository", "build_runner"])
    theirs = deployment_services.deployment_create(project=other, name="staging", stage="staging", actor=admin_member)
    their_build = Build.objects.get(deployment=theirs)

    for path in (f"builds/{their_build.pk}/progress", f"builds/{their_build.pk}/succeeded"):
        response = call(path, {"step": 1, "steps": 2, "text": "x", "digest": DIGEST}, token=token)
        assert response.status_code == 404, path
    assert call(f"builds/{their_build.pk}", token=token, method="get").status_code == 404
    response = started(token, deployment=theirs.pk, component="app", commit=repository.first)
    assert response.status_code == 404
    assert Build.objects.get(pk=their_build.pk).state == "queued"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"deployment": "nope", "component": "app"}, 404, "deployment"),
        ({"deployment": ["staging"], "component": "app"}, 400, "deployment"),
        ({"deployment": True, "component": "app"}, 400, "deployment"),
        ({"deployment": 9**30, "component": "app"}, 400, "deployment"),
        ({"deployment": "staging", "component": "postgres"}, 400, "component"),
        ({"deployment": "staging", "component": "nope"}, 400, "component"),
        ({"deployment": "staging", "component": 7}, 400, "component"),
        ({"deployment": "staging"}, 400, "component"),
        ({"deployment": "staging", "component": "app", "commit": "abc"}, 400, "commit"),
        ({"deployment": "staging", "component": "app", "commit": "g" * 40}, 400, "commit"),
        ({"deployment": "staging", "component": "app", "run_url": "javascript:alert(1)"}, 400, "run_url"),
        ({"deployment": "staging", "component": "app", "run_url": "https://x/" + "a" * 600}, 400, "run_url"),
        ({"deployment": "staging", "component": "app", "commit_message": 7}, 400, "commit_message"),
        ({"deployment": "staging", "component": "app", "commit_message": "x" * 10_001}, 400, "commit_message"),
        ({"component": "app"}, 400, None),
        ({"deployment": "staging", "branch": "main", "component": "app"}, 400, None),
    ],
)
def test_a_bad_start_report_is_a_clear_4xx(staging, token, repository, body, status, field):
    body = {"commit": repository.first, **body}
    response = started(token, **body)
    assert response.status_code == status, response.json()
    assert response.json()["error"]
    assert response.json().get("field") == field
    assert Build.objects.filter(deployment=staging).count() == 1


def test_a_development_deployment_takes_no_build_reports(staging, token, repository, admin_member):
    deployment_services.deployment_create(project=staging.project, name="dev", stage="development", actor=admin_member)
    response = started(token, deployment="dev", component="app", commit=repository.first)
    assert response.status_code == 409 and "runs code, not builds" in response.json()["error"]


def test_a_project_building_in_the_cluster_takes_no_reports(staging, token, repository, admin_member):
    services.project_build_runner_set(project=staging.project, runner="cluster", actor=admin_member)
    response = started(token, deployment="staging", component="app", commit=repository.commit("c"))
    assert response.status_code == 409 and "External CI" in response.json()["error"]

    cluster_build = Build.objects.filter(deployment=staging, runner="cluster")
    builds.builds_request(deployment=staging, trigger="admin", commit_sha=repository.first)
    build = cluster_build.get()
    response = call(f"builds/{build.pk}/succeeded", {"digest": DIGEST}, token=token)
    assert response.status_code == 409 and "cluster" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("progress", {"step": 4, "steps": 3}, "step"),
        ("progress", {"step": -1, "steps": 3}, "step"),
        ("progress", {"step": 1, "steps": 0}, "steps"),
        ("progress", {"step": "1", "steps": 3}, "step"),
        ("progress", {"step": 1, "steps": True}, "steps"),
        ("progress", {"step": 1, "steps": 3, "text": "x" * 301}, "text"),
        ("succeeded", {"digest": "sha256:" + "C" * 64}, "digest"),
        ("succeeded", {"digest": "sha512:" + "c" * 64}, "digest"),
        ("succeeded", {"digest": "sha256:" + "c" * 63}, "digest"),
        ("succeeded", {}, "digest"),
        ("failed", {}, "message"),
        ("failed", {"message": ["x"]}, "message"),
    ],
)
def test_a_bad_report_is_a_clear_400_and_changes_nothing(staging, token, path, body, field):
    build = Build.objects.get(deployment=staging)
    response = call(f"builds/{build.pk}/{path}", body, token=token)
    assert response.status_code == 400, response.json()
    assert response.json()["field"] == field
    assert Build.objects.get(pk=build.pk).state == "queued"


def test_a_report_the_state_no_longer_takes_is_409(staging, token):
    build = Build.objects.get(deployment=staging)
    assert call(f"builds/{build.pk}/succeeded", {"digest": DIGEST}, token=token).status_code == 200
    for path, body in (("failed", {"message": "late"}), ("progress", {"step": 1, "steps": 2})):
        response = call(f"builds/{build.pk}/{path}", body, token=token)
        assert response.status_code == 409 and "succeeded" in response.json()["error"]
    other = "sha256:" + "d" * 64
    assert call(f"builds/{build.pk}/succeeded", {"digest": other}, token=token).status_code == 409
    assert Build.objects.get(pk=build.pk).digest == DIGEST


@pytest.mark.parametrize(
    ("raw", "status"),
    [("not json", 400), ("[1]", 400), ('"x"', 400), ('{"a":' * 3000, 400), ("\udcff", 400),
     (json.dumps({"message": "a\u0000b"}), 400), ("x" * 70000, 413)],
)  # fmt: skip
def test_a_malformed_body_is_a_clear_4xx(staging, token, raw, status):
    build = Build.objects.get(deployment=staging)
    response = call(f"builds/{build.pk}/failed", token=token, raw=raw.encode("utf-8", "surrogatepass"))
    assert response.status_code == status
    assert response.json()["error"]


def test_an_unknown_build_or_method_is_a_clear_4xx(staging, token):
    assert call("builds/99999999/failed", {"message": "x"}, token=token).status_code == 404
    assert call("builds/99999999999999999999999/failed", {"message": "x"}, token=token).status_code == 404
    response = call("builds/started", token=token, method="get")
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_viewers_and_developers_get_no_token_but_the_api_ignores_sessions(staging, make_member, repository):
    # A signed-in session is no credential for the API: only a bearer token is.
    client = Client()
    client.force_login(make_member(Role.ADMIN))
    response = client.post(
        "/api/v1/builds/started",
        json.dumps({"deployment": "staging", "component": "app", "commit": repository.first}),
        content_type="application/json",
    )
    assert response.status_code == 401


# ----------------------------------------------------------------------------- end to end, with the worker


def test_a_ci_report_rolls_the_workload_out_pinned_by_digest(worker, external_project, admin_member, repository):
    from deployments.cluster.connection import get_cluster
    from tests.support import wait_for

    staging = deployment_services.deployment_create(
        project=external_project, name="staging", stage="staging", actor=admin_member
    )
    token = services.build_token_rotate(project=external_project, actor=admin_member)
    (build,) = started(token, branch="main", component="app", commit=repository.first).json()["builds"]
    assert call(f"builds/{build['id']}/succeeded", {"digest": DIGEST}, token=token).status_code == 200

    image = build["image"].rsplit(":", 1)[0] + "@" + DIGEST

    def running_image():
        workload = get_cluster().get("Deployment", "app", staging.namespace)
        return workload and workload["spec"]["template"]["spec"]["containers"][0]["image"] == image

    wait_for(running_image, timeout=30, what=f"the app Deployment running {image}")


def test_a_deployment_being_deleted_takes_no_new_builds(staging, token, repository):
    Deployment.objects.filter(pk=staging.pk).update(state="deleting")
    response = started(token, deployment="staging", component="app", commit=repository.first)
    assert response.status_code == 409 and "being deleted" in response.json()["error"]
