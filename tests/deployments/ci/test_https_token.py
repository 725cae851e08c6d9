"""A private https:// repository: the project's HTTPS token reaches git through GIT_ASKPASS reading a
file (on the cluster, a mounted Secret), in every stage, and never a URL, an argument, a page, a log
line or `manage.py manifests` output.

The test server speaks plain HTTP on 127.0.0.1: git asks for credentials over http:// exactly as
over https://, and a local TLS certificate would test nothing of ours."""

from __future__ import annotations

import base64
import io
import logging
import subprocess

import kubernetes_validate
import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse

from deployments import services as deployment_services
from deployments.builds import runner
from deployments.builds.models import Build
from deployments.ci import services
from deployments.ci.models import RepositoryToken
from deployments.ci.sealing import unseal
from deployments.cluster import git
from deployments.cluster.connection import get_cluster
from deployments.cluster.manifests import CLONE_SCRIPT, render
from deployments.lifecycle import reconcile_run
from deployments.models import ActivityEntry, Deployment, Operation
from tests.cluster_emulator.conftest import eventually
from tests.deployments.cluster.test_manifests import CLUSTER, KUBERNETES_VERSION, shipped_specs, target_for

TOKEN = git.GitCredentials(https_token="ghp_exampleTokenMaterial", https_username="x-access-token")


@pytest.fixture
def private_project(make_project, http_git_server):
    project = make_project("django-postgres", slug="secret-shop")
    project.repository = http_git_server.url
    project.save(update_fields=["repository"])
    return project


def _store(project, server, actor, token=None):
    return services.repository_token_set(
        project=project, token=token or server.token, username=server.username, actor=actor
    )


def test_without_the_token_or_with_a_wrong_one_the_branch_cannot_be_resolved(
    private_project, admin_member, http_git_server
):
    first = deployment_services.deployment_create(
        project=private_project, name="staging", stage="staging", actor=admin_member
    )
    assert Build.objects.get(deployment=first).state == "failed"
    _store(private_project, http_git_server, admin_member, token="ghp_wrongTokenValue")
    second = deployment_services.deployment_create(
        project=private_project, name="prod", stage="production", actor=admin_member
    )
    build = Build.objects.get(deployment=second)
    assert build.state == "failed" and "cannot be reached" in build.message
    assert "ghp_" not in build.message


def test_with_the_token_a_build_resolves_the_private_branch_head_and_no_url_holds_it(
    private_project, admin_member, http_git_server
):
    _store(private_project, http_git_server, admin_member)
    staging = deployment_services.deployment_create(
        project=private_project, name="staging", stage="staging", actor=admin_member
    )
    (build,) = Build.objects.filter(deployment=staging)
    assert (build.state, build.commit_sha) == ("queued", http_git_server.head)
    paths = [path for path, _ in http_git_server.server.requests]
    assert paths and not any(http_git_server.token in path for path in paths)
    assert any(authorization == http_git_server.server.expected for _, authorization in http_git_server.server.requests)


def test_the_clone_step_script_clones_with_the_mounted_token(tmp_path, http_git_server):
    # What the Secret volume holds, laid out as the kubelet mounts it (read-only files).
    mount, work, code = tmp_path / "mount", tmp_path / "work", tmp_path / "code"
    for directory in (mount, work, code):
        directory.mkdir()
    (mount / git.USERNAME).write_text(http_git_server.username)
    (mount / git.PASSWORD).write_text(http_git_server.token)
    for name in (git.USERNAME, git.PASSWORD):
        (mount / name).chmod(0o444)
    script = (git.CREDENTIALS_PRELUDE + CLONE_SCRIPT).replace(git.HTTPS_MOUNT, str(mount)).replace(git.WORK, str(work))

    result = subprocess.run(
        ["sh", "-c", script, str(code), "main", http_git_server.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert (code / "code" / "Dockerfile").read_text() == "FROM python:3.12-slim\n"
    assert http_git_server.token not in result.stdout + result.stderr
    assert http_git_server.token not in (code / "code" / ".git" / "config").read_text()


def test_without_the_mounted_token_the_clone_step_fails_without_asking(tmp_path, http_git_server):
    code = tmp_path / "code"
    code.mkdir()
    result = subprocess.run(
        ["sh", "-c", git.CREDENTIALS_PRELUDE + CLONE_SCRIPT, str(code), "main", http_git_server.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_TERMINAL_PROMPT": "0"},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0 and not (code / "code").exists()


def test_a_development_clone_step_mounts_the_token_from_its_own_secret():
    spec = next(s for s in shipped_specs() if s.slug == "django-postgres")
    objects = render(target_for(spec, "development", git_credentials=TOKEN), CLUSTER)
    workload = next(o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "app")
    pod = workload["spec"]["template"]["spec"]
    clone = pod["initContainers"][0]

    (secret,) = [o for o in objects if git.is_credentials_secret(o)]
    assert (secret["metadata"]["name"], secret["type"]) == ("git-https-credentials", "kubernetes.io/basic-auth")
    assert base64.b64decode(secret["data"]["password"]).decode() == TOKEN.https_token
    assert base64.b64decode(secret["data"]["username"]).decode() == "x-access-token"
    assert clone["command"][2] == git.CREDENTIALS_PRELUDE + CLONE_SCRIPT
    assert clone["command"][3:] == ["/workspace", "main", "https://github.com/acme/shop.git"]
    assert {"name": "git-https-credentials", "mountPath": git.HTTPS_MOUNT, "readOnly": True} in clone["volumeMounts"]
    assert {
        "name": "git-https-credentials",
        "secret": {"secretName": "git-https-credentials", "defaultMode": 0o444},
    } in pod["volumes"]
    assert all(v["name"] != "git-credentials" for v in pod["volumes"])  # no deploy key, no key volume
    assert all(m["name"] not in ("git-https-credentials", "git-ssh") for m in pod["containers"][0]["volumeMounts"])
    assert TOKEN.https_token not in str([o for o in objects if o is not secret])
    assert TOKEN.https_token not in repr(TOKEN)


@pytest.mark.parametrize("spec", shipped_specs(), ids=lambda s: s.slug)
def test_every_object_with_a_key_and_a_token_is_valid_for_a_real_api_server(spec):
    both = git.GitCredentials(ssh_private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nx\n", https_token="glpat-abcdefgh")
    for stage in spec.stages:
        for obj in render(target_for(spec, stage, git_credentials=both), CLUSTER):
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{spec.slug} {stage} {obj['kind']}/{obj['metadata']['name']}: {error}")


def test_a_development_deployment_clones_the_private_repository_and_the_token_never_leaks(
    private_project, admin_member, http_git_server, emulator, admin_client, caplog
):
    with caplog.at_level(logging.DEBUG):
        _store(private_project, http_git_server, admin_member)
        dev = deployment_services.deployment_create(
            project=private_project, name="dev", stage="development", actor=admin_member
        )
        reconcile_run(dev.pk, owner="test")
        found = get_cluster().get("Secret", "git-https-credentials", namespace=dev.namespace)
        assert base64.b64decode(found["data"]["password"]).decode() == http_git_server.token

        # The emulator runs the clone step as the pod would: the private repository is on the code volume.
        pod = eventually(lambda: get_cluster().get("Pod", "app-0", dev.namespace), timeout=15, message="app-0")
        view = emulator.files.view(pod, "app")
        dockerfiles = [path / "Dockerfile" for path in view.mounts.values() if (path / "Dockerfile").is_file()]
        assert [f.read_text() for f in dockerfiles] == ["FROM python:3.12-slim\n"]

        pages = [
            admin_client.get(reverse("project_settings", args=[private_project.pk])),
            admin_client.get(reverse("project", args=[private_project.pk])),
            admin_client.get(reverse("deployment", args=[dev.pk])),
            admin_client.get(reverse("deployment_describe", args=[dev.pk, "app"])),
        ]
        shown_all = io.StringIO()
        call_command("manifests", str(dev.pk), "--show-secrets", stdout=shown_all)

    for page in pages:
        assert page.status_code == 200 and http_git_server.token not in page.content.decode()
    assert "ghp_…" in pages[0].content.decode()  # its hint only
    assert http_git_server.token not in shown_all.getvalue()
    shown = list(yaml.safe_load_all(shown_all.getvalue()))
    secret = next(o for o in shown if o["metadata"]["name"] == "git-https-credentials")
    assert secret["data"] == {"username": "<hidden>", "password": "<hidden>"}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert http_git_server.token not in logged
    assert not ActivityEntry.objects.filter(message__contains=http_git_server.token).exists()
    assert http_git_server.token not in RepositoryToken.objects.get(project=private_project).sealed_token


def test_replacing_or_removing_the_token_reaches_every_live_deployment(private_project, admin_member, http_git_server):
    dev = deployment_services.deployment_create(
        project=private_project, name="dev", stage="development", actor=admin_member
    )
    generation = Deployment.objects.get(pk=dev.pk).desired_generation
    _store(private_project, http_git_server, admin_member)
    _store(private_project, http_git_server, admin_member)
    assert Deployment.objects.get(pk=dev.pk).desired_generation == generation + 2
    assert RepositoryToken.objects.filter(project=private_project).count() == 1
    assert ActivityEntry.objects.filter(project=private_project, action="ci.repository_token_replaced").exists()
    services.repository_token_delete(project=private_project, actor=admin_member)
    services.repository_token_delete(project=private_project, actor=admin_member)  # idempotent
    assert Deployment.objects.get(pk=dev.pk).desired_generation == generation + 3
    assert Operation.objects.filter(deployment=dev, message="Repository credentials removed").count() == 1
    assert Deployment.objects.get(pk=dev.pk).git_credentials() is None


def test_a_build_job_mounts_its_own_copy_of_the_token_owned_by_the_job(
    private_project, admin_member, http_git_server, emulator, settings
):
    settings.BUILD_RUNNER = "cluster"
    _store(private_project, http_git_server, admin_member)
    staging = deployment_services.deployment_create(
        project=private_project, name="staging", stage="staging", actor=admin_member
    )
    (build,) = Build.objects.filter(deployment=staging)
    try:
        runner.build_run(build.pk, owner="test")
    except runner.StillBuilding:
        pass  # the Job exists; following its pod is the runner's next round
    cluster = get_cluster()
    job = cluster.get("Job", f"build-{build.pk}", settings.BUILD_NAMESPACE)
    secret = cluster.get("Secret", git.build_https_secret_name(build.pk), settings.BUILD_NAMESPACE)

    assert secret["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    assert base64.b64decode(secret["data"][git.PASSWORD]).decode() == http_git_server.token
    pod = job["spec"]["template"]["spec"]
    clone = pod["initContainers"][0]
    assert clone["command"][2].startswith(git.CREDENTIALS_PRELUDE)
    assert http_git_server.token not in str(job) and http_git_server.url in clone["command"]
    assert {
        "name": "git-https-credentials",
        "secret": {"secretName": secret["metadata"]["name"], "defaultMode": 0o444},
    } in pod["volumes"]
    assert http_git_server.token not in Build.objects.get(pk=build.pk).log


def test_the_settings_page_stores_a_token_shows_only_its_hint_and_refuses_bad_input(
    admin_client, team_developer_client, viewer_client, project
):
    url = reverse("ci_repository_token", args=[project.pk])
    bad = admin_client.post(url, {"action": "set", "token": "has a space", "username": "x-access-token"})
    assert bad.status_code == 400 and "without spaces" in bad.content.decode()
    assert "has a space" not in bad.content.decode() and not RepositoryToken.objects.exists()
    assert admin_client.post(url, {"action": "steal"}).status_code == 400
    for client in (team_developer_client, viewer_client):
        assert client.post(url, {"action": "set", "token": "glpat-abcdefgh"}).status_code == 403
    assert not RepositoryToken.objects.exists()

    stored = admin_client.post(url, {"action": "set", "token": "glpat-secretValue99", "username": "deployer"})
    assert stored.status_code == 200
    row = RepositoryToken.objects.get(project=project)
    assert (row.username, row.hint, unseal(row.sealed_token)) == ("deployer", "glpa", "glpat-secretValue99")
    for client in (admin_client, team_developer_client):
        body = client.get(reverse("project_settings", args=[project.pk])).content.decode()
        assert "glpat-secretValue99" not in body and "glpa…" in body
    assert "glpat-secretValue99" not in stored.content.decode()
    assert admin_client.post(url, {"action": "set", "token": "glpat-abcdefgh"}).status_code == 200
    assert RepositoryToken.objects.get(project=project).username == "x-access-token"

    assert admin_client.post(url, {"action": "delete"}).status_code == 200
    assert not RepositoryToken.objects.exists()
