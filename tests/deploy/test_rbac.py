"""The install's ClusterRoles grant exactly what Diploi's processes ask of the cluster.

Diploi's own code runs its real flows against the emulator, which records each
request as RBAC sees it (verb, API group, resource); the client's user agent
says which process asked. Every request must be granted by that process's
role, and every rule of the role must have been needed: a new API call in the
code fails this test until the role grants it, and a grant nobody uses does too.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import urllib.request
from collections import defaultdict

import pytest
from django.urls import reverse

from deployments import lifecycle, services
from deployments.actions import runner as action_runner
from deployments.actions import services as action_services
from deployments.builds import runner
from deployments.builds import services as build_services
from deployments.builds.models import Build
from deployments.cluster.connection import get_cluster, reset_cluster
from deployments.cluster.resources import PRUNABLE_KINDS, RESOURCES
from deployments.models import Deployment, DeploymentState, DeploymentStatus, Operation
from deployments.watcher import ClusterWatcher
from diploi_site.process import process_name, set_process_name
from tests.deploy.kustomize import rendered_overlay
from tests.support import wait_for

# The Kubernetes ServiceAccount each process runs as in deploy/kubernetes/.
SERVICE_ACCOUNTS = {
    "web": "diploi-web",
    "worker": "diploi-worker",
    "watcher": "diploi-watcher",
    "ssh-gateway": "diploi-ssh-gateway",
}


def granted(objects: list[dict]) -> dict[str, set[tuple[str, str, str]]]:
    """(apiGroup, resource, verb) each ServiceAccount may use, from the rendered ClusterRoles and their bindings."""
    roles = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ClusterRole"}
    grants: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for binding in (o for o in objects if o["kind"] == "ClusterRoleBinding"):
        role = roles[binding["roleRef"]["name"]]
        for subject in binding["subjects"]:
            for rule in role.get("rules", []):
                for group, resource, verb in itertools.product(rule["apiGroups"], rule["resources"], rule["verbs"]):
                    grants[subject["name"]].add((group, resource, verb))
    return grants


@pytest.fixture
def as_process():
    """Run the block as one of Diploi's processes (the cluster client names it in its user agent)."""
    before = process_name()

    def switch(name: str) -> None:
        set_process_name(name)
        reset_cluster()

    yield switch
    switch(before)


@pytest.fixture
def cluster_usage(transactional_db, emulator, make_project, make_member, client, settings, as_process, tmp_path):
    """Every request Diploi's flows make, by process: create every template in every stage, watch them
    with CPU sampling, describe, SSH in (a command, `ssh -L`), run an action, change add-ons (prune), restart, delete
    storage, delete."""
    settings.CPU_SAMPLE_SECONDS = 1
    settings.CLUSTER_SIMULATED = True  # the emulator: an unreachable repository gives a simulated commit
    developer = make_member()
    emulator.audit.enable()

    as_process("worker")
    deployments = []
    for template in ("django-postgres", "fastapi-redis", "nextjs-postgres", "static-nginx"):
        project = make_project(template)
        for stage in ("development", "staging", "production"):
            deployment = services.deployment_create(project=project, name=stage, stage=stage, actor=developer)
            assert lifecycle.reconcile_run(deployment.pk, owner="rbac") == "applied"
            deployments.append(deployment)

    # The first builds of every staging and production deployment: one runs to its end (Job, pod list,
    # followed log, digest), another is cancelled while it runs (its Job deleted).
    first, second = Build.objects.filter(state="queued").order_by("pk")[:2]
    wait_for(lambda: _built(first.pk), timeout=20, what="a build finished")
    emulator.timing.build_step_delay = 0.3  # long enough to cancel it while it runs
    cancelled = {}
    follower = threading.Thread(target=lambda: cancelled.update(outcome=_run_closing(second.pk)))
    follower.start()
    wait_for(lambda: Build.objects.get(pk=second.pk).step >= 1, timeout=20, what="a build under way")
    build_services.build_cancel(build_id=second.pk, reason="RBAC flow")
    follower.join(30)
    assert cancelled["outcome"] == "cancelled"
    # The other deployments' builds are reported done as an external CI would (no cluster requests).
    for deployment in deployments:
        deployment.refresh_from_db()
        if build_services.buildable_components(deployment) and not deployment.built_images:
            build = Build.objects.filter(deployment=deployment, state__in=Build.ACTIVE).first()
            if build is None:
                (build,) = build_services.builds_request(deployment=deployment, trigger="api", commit_sha="a" * 40)
            build_services.build_succeeded(build_id=build.pk, digest="sha256:" + "f" * 64)
        assert lifecycle.reconcile_run(deployment.pk, owner="rbac") == "applied"

    as_process("watcher")
    watcher = ClusterWatcher(get_cluster, coalesce=0.05, recompute_every=1).start()
    try:
        wait_for(
            lambda: (
                DeploymentStatus.objects.filter(health="green").count() == len(deployments)
                and DeploymentStatus.objects.filter(cpu_millicores__isnull=False).exists()
            ),
            timeout=30,
            what="every deployment green and a CPU sample",
        )
    finally:
        watcher.stop()

    as_process("web")
    client.force_login(developer)
    with_redis = next(d for d in deployments if d.project.template.slug == "fastapi-redis")
    response = client.get(reverse("deployment_describe", args=[with_redis.pk, "redis"]))
    assert response.status_code == 200
    _read_logs(with_redis, client)

    as_process("ssh-gateway")
    development = next(d for d in deployments if d.stage == "development" and d.spec.ssh)
    _ssh_in(development, developer, tmp_path, settings)

    as_process("worker")
    run, _ = action_services.action_run_start(
        deployment=development, action_name=development.spec.actions[0].name, actor=developer, confirmed=True
    )
    assert action_runner.action_run(run.pk, owner="rbac") == "succeeded"

    as_process("worker")
    services.deployment_update(deployment=with_redis, actor=developer, addons=[], delete_storage_of=["redis"])
    assert lifecycle.reconcile_run(with_redis.pk, owner="rbac") == "applied"
    storage = Operation.objects.get(deployment=with_redis, kind=Operation.Kind.DELETE_STORAGE)
    wait_for(lambda: _finished(lifecycle.delete_storage_run, storage.pk), timeout=20, what="the storage deleted")
    services.deployment_restart(deployment=with_redis, actor=developer)
    assert lifecycle.reconcile_run(with_redis.pk, owner="rbac") == "applied"
    deletion = services.deployment_delete(deployment=with_redis, actor=developer)
    wait_for(lambda: _finished(lifecycle.delete_run, deletion.pk), timeout=20, what="the deployment deleted")
    assert Deployment.objects.get(pk=with_redis.pk).state == DeploymentState.DELETED

    used: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for record in emulator.audit.records():
        if record.is_resource_request:
            process = record.user_agent.removeprefix("diploi-")
            for verb in record.verbs:
                used[process].add((record.api_group, record.rbac_resource, verb))
    return used


def _read_logs(deployment, client) -> None:
    """What the Logs tab asks of the cluster: a container's log (the download), and a log source naming
    a command, run through exec."""
    import asyncio

    from deployments.logs.sources import log_sources
    from deployments.logs.streams import LogStream, Source

    response = client.get(reverse("deployment_logs_download", args=[deployment.pk]) + "?component=redis&lines=5")
    assert response.status_code == 200
    (source,) = log_sources(deployment, component="redis")

    async def run_command() -> list[str]:
        command = Source(source.pod, source.container, ("sh", "-c", "echo from exec"))
        stream = LogStream(namespace=deployment.namespace, sources=[command]).start()
        texts = []
        while (batch := await asyncio.wait_for(stream.read(), 20)) is not None:
            texts += [line.text for line in batch.lines]
        return texts

    assert asyncio.run(run_command()) == ["from exec"]


def _run_closing(build_id: int) -> str:
    from django.db import connection

    try:
        return runner.build_run(build_id, owner="rbac")
    finally:
        connection.close()


def _built(build_id: int) -> bool:
    try:
        return runner.build_run(build_id, owner="rbac") == "succeeded"
    except runner.StillBuilding:
        return False


def _ssh_in(deployment, developer, tmp_path, settings) -> None:
    """What the SSH gateway asks of the cluster: find the pod, exec a command, forward a port."""
    from deployments.ssh.gateway.server import GatewayThread
    from deployments.ssh.hostkey import known_hosts_line
    from deployments.ssh.naming import ssh_user_for
    from deployments.ssh.services import ssh_key_add
    from tests.deployments.ssh.gateway.conftest import OpenSSH, generate_key
    from tests.support import free_port

    key = generate_key(tmp_path / "id_ed25519")
    ssh_key_add(user=developer, name="rbac", public_key=key.with_suffix(".pub").read_text(), actor=developer)
    component = deployment.spec.ssh[0].component
    user = ssh_user_for(component=component, deployment=deployment.name, project=deployment.project.slug)
    settings.SSH_HOST = "127.0.0.1"
    gateway = GatewayThread(host="127.0.0.1", port=0).start()
    try:
        settings.SSH_PORT = gateway.port
        (tmp_path / "known_hosts").write_text(known_hosts_line() + "\n")
        openssh = OpenSSH(port=gateway.port, key=key, known_hosts=tmp_path / "known_hosts")
        result = openssh.ssh(user, "true")
        assert result.returncode == 0, result.stderr
        port = free_port()
        tunnel = subprocess.Popen(
            openssh.ssh_args(user, "-N", "-L", f"{port}:localhost:{deployment.spec.component(component).port}")
        )
        try:
            wait_for(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).status == 200,
                timeout=20,
                what="an answer through ssh -L",
            )
        finally:
            tunnel.terminate()
            tunnel.wait(10)
    finally:
        gateway.stop()


def _finished(run, operation_id: int) -> bool:
    try:
        run(operation_id, owner="rbac")
    except (lifecycle.StillDeleting, lifecycle.LeaseBusy):
        return False
    return not Operation.objects.get(pk=operation_id).is_active


def declared_in_code() -> dict[str, set[tuple[str, str, str]]]:
    """What the code may ask for but no flow can be made to: pruning deletes any kind it lists
    (PRUNABLE_KINDS) once a template stops rendering it; the runner watches a build's pod; a StatefulSet
    replacement watches the old one go."""
    prunable = {(RESOURCES[kind].group, RESOURCES[kind].plural, "delete") for kind in PRUNABLE_KINDS}
    # The runner watches a build's pod until its container starts and until its exit is reported; a
    # pod that is quick enough to have started (or ended) when first listed needs no watch.
    build_pod_watch = {("", "pods", "watch")}
    # Replacing a StatefulSet whose fixed fields changed (an old deployment's serviceName) watches the old
    # one go (tests/deployments/test_statefulset_migration.py); deployments made now never need it.
    replacement_watch = {("apps", "statefulsets", "watch")}
    return {"worker": prunable | build_pod_watch | replacement_watch}


def test_every_process_is_granted_exactly_what_it_uses(cluster_usage):
    grants = granted(rendered_overlay())
    for process, needs in declared_in_code().items():
        cluster_usage[process] |= needs
    assert set(cluster_usage) <= set(SERVICE_ACCOUNTS), f"requests from unexpected processes: {set(cluster_usage)}"
    for process, account in SERVICE_ACCOUNTS.items():
        needed, given = cluster_usage.get(process, set()), grants.get(account, set())
        assert not needed - given, f"{account} lacks: {sorted(needed - given)}"
        assert not given - needed, f"{account} is granted what it never uses: {sorted(given - needed)}"
