"""`POST /hooks/github/<project>/`: signatures first; ping answered; other events ignored with a reason."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest
from django.test import Client

from deployments.ci import services
from deployments.models import ActivityEntry

SHA = "a" * 40


@pytest.fixture
def secret(project, admin_member):
    return services.webhook_secret_rotate(project=project, actor=admin_member)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(project, body: bytes, *, event="push", signature=None, content_type="application/json"):
    # A fresh client that enforces CSRF, as GitHub's requests would meet it.
    client = Client(enforce_csrf_checks=True)
    headers = {"HTTP_X_GITHUB_EVENT": event, "HTTP_X_GITHUB_DELIVERY": "d-1"}
    if signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return client.post(f"/hooks/github/{project.slug}/", body, content_type=content_type, **headers)


def test_a_signed_ping_is_answered(project, secret):
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    response = deliver(project, body, event="ping", signature=sign(secret, body))
    assert response.status_code == 200
    assert response.json()["ok"] is True


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=" + "0" * 64, "sha1=abc", "garbage", "sha256=" + "é" * 64],
    ids=["missing", "empty", "wrong", "sha1", "garbage", "non-ascii"],
)
def test_a_bad_or_missing_signature_is_refused_with_401_and_a_log_line(project, secret, signature, caplog):
    body = json.dumps({"ref": "refs/heads/main", "after": SHA}).encode()
    before = ActivityEntry.objects.count()
    with caplog.at_level(logging.WARNING, logger="deployments.ci.hooks"):
        response = deliver(project, body, signature=signature)

    assert response.status_code == 401
    assert "Refused" in response.json()["error"]
    assert any("refused" in record.getMessage() and project.slug in record.getMessage() for record in caplog.records)
    assert ActivityEntry.objects.count() == before


def test_a_body_changed_after_signing_is_refused(project, secret):
    body = json.dumps({"ref": "refs/heads/main", "after": SHA}).encode()
    signature = sign(secret, body)
    assert deliver(project, body.replace(b"main", b"evil"), signature=signature).status_code == 401


def test_the_old_secret_stops_working_when_rotated(project, secret, admin_member):
    body = b"{}"
    services.webhook_secret_rotate(project=project, actor=admin_member)
    assert deliver(project, body, event="ping", signature=sign(secret, body)).status_code == 401


def test_without_a_secret_every_delivery_is_refused(project):
    body = b"{}"
    response = deliver(project, body, event="ping", signature=sign("anything", body))
    assert response.status_code == 401
    assert "no webhook secret" in response.json()["error"]


def test_an_unknown_project_is_404(db):
    response = Client().post("/hooks/github/nope/", b"{}", content_type="application/json")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        ("issues", {"action": "opened"}, "the issues event is not used; only push is"),
        ("push", {"ref": "refs/tags/v1.0", "after": SHA}, "refs/tags/v1.0 is not a branch"),
        ("push", {"ref": "refs/heads/main", "after": "0" * 40, "deleted": True}, "the branch main was deleted"),
        ("push", {"ref": "refs/heads/nobody-follows", "after": SHA}, "no staging or production deployment"),
    ],
)
def test_signed_events_it_does_not_act_on_are_204_with_the_reason(project, secret, event, payload, reason):
    body = json.dumps(payload).encode()
    response = deliver(project, body, event=event, signature=sign(secret, body))
    assert response.status_code == 204
    assert reason in response["X-Diploi-Ignored"]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", json.dumps({"ref": 1, "after": SHA}).encode(),
     json.dumps({"ref": "refs/heads/main", "after": "HEAD"}).encode(),
     json.dumps({"ref": "refs/heads/main\u0000", "after": SHA}).encode()],
    ids=["not-json", "not-an-object", "ref-not-a-string", "after-not-a-sha", "nul"],
)  # fmt: skip
def test_a_signed_but_malformed_push_is_a_clear_400(project, secret, body):
    response = deliver(project, body, signature=sign(secret, body))
    assert response.status_code == 400
    assert response.json()["error"]


def test_only_post_is_accepted(project, secret):
    response = Client().get(f"/hooks/github/{project.slug}/")
    assert response.status_code == 405


# ----------------------------------------------------------------------------- pushes that build


@pytest.fixture
def followed(external_project, admin_member):
    from deployments import services as deployment_services

    services.webhook_secret_rotate(project=external_project, actor=admin_member)
    staging = deployment_services.deployment_create(
        project=external_project, name="staging", stage="staging", actor=admin_member
    )
    production = deployment_services.deployment_create(
        project=external_project, name="prod", stage="production", branch="release", actor=admin_member
    )
    deployment_services.deployment_create(project=external_project, name="dev", stage="development", actor=admin_member)
    return staging, production


def push(project, branch: str, sha: str, *, event="push", **more):
    from deployments.ci.models import WebhookSecret
    from deployments.ci.sealing import unseal

    secret = unseal(WebhookSecret.objects.get(project=project).sealed)
    payload = {"ref": f"refs/heads/{branch}", "after": sha, "repository": {"full_name": "acme/shop"}, **more}
    body = json.dumps(payload).encode()
    return deliver(project, body, event=event, signature=sign(secret, body))


def test_a_push_to_a_followed_branch_builds_its_deployments_only(external_project, followed, repository):
    from deployments.builds.models import Build

    staging, production = followed
    sha = repository.commit("second")
    response = push(external_project, "main", sha)

    assert response.status_code == 202
    (build,) = response.json()["builds"]
    row = Build.objects.get(pk=build["id"])
    assert (row.deployment_id, row.commit_sha, row.trigger, row.state) == (staging.pk, sha, "push", "queued")
    assert not Build.objects.filter(deployment=production, commit_sha=sha).exists()
    # The first build (of the older head) was replaced by the push's.
    assert Build.objects.get(deployment=staging, commit_sha=repository.first).state == "cancelled"
    assert ActivityEntry.objects.filter(deployment=staging, action="build.requested", data__commit=sha).exists()


def test_the_pushed_commits_subject_is_the_builds_commit_message(external_project, followed, repository):
    from deployments.builds.models import Build

    staging, _ = followed
    sha = repository.commit("second")
    head = {"id": sha, "message": "Fix the checkout page\n\nThe total was off by one cent."}
    (build,) = push(external_project, "main", sha, head_commit=head).json()["builds"]
    assert Build.objects.get(pk=build["id"]).commit_message == "Fix the checkout page"
    # A head_commit that is not the pushed one (or no message) says nothing.
    other = repository.commit("third")
    (build,) = push(external_project, "main", other, head_commit={"id": sha, "message": "x"}).json()["builds"]
    assert Build.objects.get(pk=build["id"]).commit_message == ""
    (build,) = push(external_project, "main", repository.commit("4th"), head_commit={"message": 5}).json()["builds"]
    assert Build.objects.get(pk=build["id"]).commit_message == ""


def test_a_redelivered_push_requests_nothing_again(external_project, followed, repository):
    from deployments.builds.models import Build

    sha = repository.commit("second")
    assert push(external_project, "main", sha).status_code == 202
    again = push(external_project, "main", sha)
    assert again.status_code == 204
    assert "already requested" in again["X-Diploi-Ignored"]
    assert Build.objects.filter(commit_sha=sha).count() == 1


def test_a_push_to_the_production_branch_builds_production(external_project, followed, repository):
    _, production = followed
    response = push(external_project, "release", "b" * 40)
    assert response.status_code == 202
    assert [b["deployment"] for b in response.json()["builds"]] == ["prod"]


def test_a_big_push_of_many_commits_is_read(external_project, followed, repository):
    """GitHub lists up to 20 commits with their added, removed and modified files: hundreds of KiB."""
    from deployments.ci.models import WebhookSecret
    from deployments.ci.sealing import unseal

    sha = repository.commit("many files")
    commits = [
        {"id": f"{i:040x}", "message": "x" * 2000, "modified": [f"src/module_{i}_{n}.py" for n in range(300)]}
        for i in range(20)
    ]
    body = json.dumps({"ref": "refs/heads/main", "after": sha, "commits": commits}).encode()
    assert len(body) > 150_000
    secret = unseal(WebhookSecret.objects.get(project=external_project).sealed)
    assert deliver(external_project, body, signature=sign(secret, body)).status_code == 202
