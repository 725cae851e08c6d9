"""A private repository's deploy key reaches the clone steps through a Secret, and nowhere else:
not a URL, an argument, a page, a log line or `manage.py manifests` output."""

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
from deployments.ci import services
from deployments.ci.models import DeployKey
from deployments.ci.sealing import unseal
from deployments.cluster import git
from deployments.cluster.connection import get_cluster
from deployments.cluster.manifests import CLONE_SCRIPT, render
from deployments.lifecycle import reconcile_run
from deployments.models import ActivityEntry, Deployment, Operation
from tests.deployments.cluster.test_manifests import CLUSTER, KUBERNETES_VERSION, shipped_specs, target_for

KEY = git.GitCredentials(
    ssh_private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAtestkeymaterial\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


def clone_container(objects, component="app"):
    workload = next(o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == component)
    return workload["spec"]["template"]["spec"], workload["spec"]["template"]["spec"]["initContainers"][0]


def test_without_a_key_the_clone_step_is_as_before():
    spec = next(s for s in shipped_specs() if s.slug == "django-postgres")
    objects = render(target_for(spec, "development"), CLUSTER)
    pod, clone = clone_container(objects)
    assert clone["command"][2] == CLONE_SCRIPT
    assert "volumes" not in pod
    assert not any(git.is_credentials_secret(o) for o in objects)


def test_with_a_key_the_clone_step_mounts_it_from_a_secret_never_an_argument():
    spec = next(s for s in shipped_specs() if s.slug == "django-postgres")
    objects = render(target_for(spec, "development", git_credentials=KEY), CLUSTER)
    pod, clone = clone_container(objects)

    secret = next(o for o in objects if git.is_credentials_secret(o))
    assert secret["type"] == "kubernetes.io/ssh-auth"
    assert base64.b64decode(secret["data"]["ssh-privatekey"]).decode() == KEY.ssh_private_key
    assert "github.com ssh-ed25519" in base64.b64decode(secret["data"]["known_hosts"]).decode()
    assert clone["command"][2] == git.CREDENTIALS_PRELUDE + CLONE_SCRIPT
    assert clone["command"][3:] == ["/workspace", "main", "https://github.com/acme/shop.git"]
    assert {"name": "git-credentials", "mountPath": git.MOUNT, "readOnly": True} in clone["volumeMounts"]
    assert {"name": "git-credentials", "secret": {"secretName": "git-credentials", "defaultMode": 0o444}} in pod[
        "volumes"
    ]
    app = pod["containers"][0]
    assert all(mount["name"] not in ("git-credentials", "git-ssh") for mount in app["volumeMounts"])
    assert "testkeymaterial" not in repr(target_for(spec, "development", git_credentials=KEY))


@pytest.mark.parametrize("spec", shipped_specs(), ids=lambda s: s.slug)
def test_every_object_with_a_key_is_valid_for_a_real_api_server(spec):
    for stage in spec.stages:
        for obj in render(target_for(spec, stage, git_credentials=KEY), CLUSTER):
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{spec.slug} {stage} {obj['kind']}/{obj['metadata']['name']}: {error}")


def test_the_prelude_gives_git_a_private_copy_of_the_key(tmp_path):
    """Run the prelude with sh, as the clone container does, against a mounted-looking directory."""
    mount, work = tmp_path / "mount", tmp_path / "work"
    mount.mkdir()
    work.mkdir()
    (mount / "ssh-privatekey").write_text(KEY.ssh_private_key)
    (mount / "known_hosts").write_text("github.com ssh-ed25519 AAAA\n")
    (mount / "ssh-privatekey").chmod(0o444)
    script = git.CREDENTIALS_PRELUDE.replace(git.MOUNT, str(mount)).replace(git.WORK, str(work))
    result = subprocess.run(
        ["sh", "-c", script + 'printf "%s" "$GIT_SSH_COMMAND"'], capture_output=True, text=True, check=True
    )
    assert (work / "key").stat().st_mode & 0o777 == 0o600
    assert result.stdout.startswith(f"ssh -i {work}/key -o IdentitiesOnly=yes -o UserKnownHostsFile={work}/known_hosts")
    assert "StrictHostKeyChecking=accept-new" in result.stdout
    # The real ssh accepts the options the prelude gives it.
    checked = subprocess.run(["sh", "-c", f"{result.stdout} -G github.com"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert f"identityfile {work}/key" in checked.stdout


@pytest.fixture
def private_project(project, admin_member):
    project.repository = "git@github.com:acme/private-shop.git"
    project.save(update_fields=["repository"])
    services.deploy_key_generate(project=project, actor=admin_member)
    return project


def test_a_new_key_reaches_every_live_deployment_and_the_secret_never_leaks(
    private_project, admin_member, emulator, admin_client, caplog
):
    with caplog.at_level(logging.DEBUG):
        dev = deployment_services.deployment_create(
            project=private_project, name="dev", stage="development", actor=admin_member
        )
        reconcile_run(dev.pk, owner="test")
        private_key = unseal(DeployKey.objects.get(project=private_project).sealed_private_key)
        marker = private_key.splitlines()[1]  # a line of the key's base64, found nowhere else

        found = get_cluster().get("Secret", "git-credentials", namespace=dev.namespace)
        assert base64.b64decode(found["data"]["ssh-privatekey"]).decode() == private_key

        # Rotating the key: a new generation and a reconcile for each live deployment.
        generation = Deployment.objects.get(pk=dev.pk).desired_generation
        services.deploy_key_generate(project=private_project, actor=admin_member)
        assert Deployment.objects.get(pk=dev.pk).desired_generation == generation + 1
        assert Operation.objects.filter(deployment=dev, message="Repository credentials changed").exists()
        reconcile_run(dev.pk, owner="test")
        new_key = unseal(DeployKey.objects.get(project=private_project).sealed_private_key)
        found = get_cluster().get("Secret", "git-credentials", namespace=dev.namespace)
        assert base64.b64decode(found["data"]["ssh-privatekey"]).decode() == new_key

        pages = [
            admin_client.get(reverse("project_settings", args=[private_project.pk])),
            admin_client.get(reverse("project", args=[private_project.pk])),
            admin_client.get(reverse("deployment", args=[dev.pk])),
            admin_client.get(reverse("deployment_describe", args=[dev.pk, "app"])),
        ]
        shown = io.StringIO()
        call_command("manifests", str(dev.pk), stdout=shown)
        shown_all = io.StringIO()
        call_command("manifests", str(dev.pk), "--show-secrets", stdout=shown_all)

    new_marker = new_key.splitlines()[1]
    for page in pages:
        assert page.status_code == 200
        assert marker not in page.content.decode() and new_marker not in page.content.decode()
    for output in (shown.getvalue(), shown_all.getvalue()):
        assert marker not in output and new_marker not in output
        assert base64.b64encode(new_key.encode()).decode()[:40] not in output
        secret = next(o for o in yaml.safe_load_all(output) if o["metadata"]["name"] == "git-credentials")
        assert secret["data"] == {"ssh-privatekey": "<hidden>", "known_hosts": "<hidden>"}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert marker not in logged and new_marker not in logged
    assert not ActivityEntry.objects.filter(message__contains=new_marker).exists()


def test_removing_the_key_prunes_its_secret(private_project, admin_member, emulator):
    dev = deployment_services.deployment_create(
        project=private_project, name="dev", stage="development", actor=admin_member
    )
    reconcile_run(dev.pk, owner="test")
    assert get_cluster().get("Secret", "git-credentials", namespace=dev.namespace)

    services.deploy_key_delete(project=private_project, actor=admin_member)
    reconcile_run(dev.pk, owner="test")
    names = [o["metadata"]["name"] for o in get_cluster().list("Secret", namespace=dev.namespace)[0]]
    assert "git-credentials" not in names
    assert not DeployKey.objects.filter(project=private_project).exists()


def test_builds_stages_keep_no_key_in_their_namespace():
    """Staging and production clone only in their build's Job (the builds namespace, its own copy)."""
    for spec in shipped_specs():
        for stage in ("staging", "production"):
            if stage in spec.stages and spec.mode(stage) == "build":
                objects = render(target_for(spec, stage, git_credentials=KEY), CLUSTER)
                assert not any(git.is_credentials_secret(o) for o in objects), (spec.slug, stage)


def test_a_key_sealed_with_another_key_fails_the_apply_for_good_saying_why(private_project, admin_member, settings):
    dev = deployment_services.deployment_create(
        project=private_project, name="dev", stage="development", actor=admin_member
    )
    settings.SECRETS_ENCRYPTION_KEY = "a different key"
    assert reconcile_run(dev.pk, owner="test") == "failed"
    assert "SECRETS_ENCRYPTION_KEY" in Deployment.objects.get(pk=dev.pk).failure_reason


def test_reading_a_deployment_needs_no_credentials(private_project, admin_member, django_assert_num_queries):
    """Hosts and status expectations are read for every deployment on every watcher pass: the key is
    loaded (and unsealed) only to apply."""
    from deployments.cluster.connection import cluster_settings

    dev = deployment_services.deployment_create(
        project=private_project, name="dev", stage="development", actor=admin_member
    )
    dev = Deployment.objects.select_related("project__team", "template_version").get(pk=dev.pk)
    with django_assert_num_queries(0):
        dev.expectation(cluster_settings(), operations=[])
        assert dev.render_target().git_credentials is None
    assert dev.render_target(with_credentials=True).git_credentials is not None
