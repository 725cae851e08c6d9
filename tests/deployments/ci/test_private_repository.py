"""A private repository behind a real OpenSSH server: the deploy key resolves its branch head,
clones it with the clone steps' own script, and reaches a build's Job only through a Secret."""

from __future__ import annotations

import base64
import subprocess

import pytest

from deployments import services as deployment_services
from deployments.builds import runner
from deployments.builds.models import Build
from deployments.ci import services
from deployments.ci.models import DeployKey
from deployments.ci.sealing import unseal
from deployments.cluster import git
from deployments.cluster.connection import get_cluster
from deployments.cluster.manifests import CLONE_SCRIPT


@pytest.fixture
def private_project(make_project, ssh_git_server):
    project = make_project("django-postgres", slug="secret-shop")
    project.repository = ssh_git_server.url
    project.save(update_fields=["repository"])
    return project


def test_without_the_deploy_key_the_branch_cannot_be_resolved(private_project, admin_member):
    staging = deployment_services.deployment_create(
        project=private_project, name="staging", stage="staging", actor=admin_member
    )
    (build,) = Build.objects.filter(deployment=staging)
    assert build.state == "failed" and "cannot be reached" in build.message


def test_with_the_deploy_key_a_build_resolves_the_private_branch_head(private_project, admin_member, ssh_git_server):
    key = services.deploy_key_generate(project=private_project, actor=admin_member)
    ssh_git_server.authorize(key.public_key)

    staging = deployment_services.deployment_create(
        project=private_project, name="staging", stage="staging", actor=admin_member
    )
    (build,) = Build.objects.filter(deployment=staging)
    assert (build.state, build.commit_sha) == ("queued", ssh_git_server.head)


def test_the_clone_step_script_clones_the_private_repository_with_the_mounted_key(
    tmp_path, private_project, admin_member, ssh_git_server
):
    key = services.deploy_key_generate(project=private_project, actor=admin_member)
    ssh_git_server.authorize(key.public_key)
    # What the Secret volume holds, laid out as the kubelet mounts it (read-only files).
    mount, work, code = tmp_path / "mount", tmp_path / "work", tmp_path / "code"
    for directory in (mount, work, code):
        directory.mkdir()
    (mount / git.PRIVATE_KEY).write_text(unseal(DeployKey.objects.get(project=private_project).sealed_private_key))
    (mount / git.KNOWN_HOSTS).write_text("\n".join(git.PUBLISHED_HOST_KEYS) + "\n")
    (mount / git.PRIVATE_KEY).chmod(0o444)
    script = (git.CREDENTIALS_PRELUDE + CLONE_SCRIPT).replace(git.MOUNT, str(mount)).replace(git.WORK, str(work))

    result = subprocess.run(
        ["sh", "-c", script, str(code), "main", ssh_git_server.url], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert (code / "code" / "Dockerfile").read_text() == "FROM python:3.12-slim\n"
    assert "PRIVATE KEY" not in result.stdout + result.stderr


def test_a_build_job_mounts_its_own_copy_of_the_key_owned_by_the_job(
    private_project, admin_member, ssh_git_server, emulator, settings
):
    settings.BUILD_RUNNER = "cluster"
    key = services.deploy_key_generate(project=private_project, actor=admin_member)
    ssh_git_server.authorize(key.public_key)
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
    secret = cluster.get("Secret", git.build_secret_name(build.pk), settings.BUILD_NAMESPACE)

    assert secret["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"], "uid": job["metadata"]["uid"]}
    ]
    private = unseal(DeployKey.objects.get(project=private_project).sealed_private_key)
    assert base64.b64decode(secret["data"][git.PRIVATE_KEY]).decode() == private
    pod = job["spec"]["template"]["spec"]
    clone = pod["initContainers"][0]
    assert clone["command"][2].startswith(git.CREDENTIALS_PRELUDE)
    assert private not in str(job) and ssh_git_server.url in clone["command"]
    assert {"name": "git-credentials", "secret": {"secretName": secret["metadata"]["name"], "defaultMode": 0o444}} in (
        pod["volumes"]
    )
    assert private.splitlines()[1] not in Build.objects.get(pk=build.pk).log
