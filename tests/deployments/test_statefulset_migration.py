"""StatefulSets made before their headless Services (issue 15, item 3) move over on the next apply:
`spec.serviceName` cannot change in place, so the StatefulSet is deleted orphaning its pods and created
again, adopting them, with the claims (and their data) untouched."""

from __future__ import annotations

import copy
import threading

import pytest
from django.db import connection

from deployments import lifecycle, services
from deployments.cluster import errors
from deployments.cluster import labels as L
from deployments.cluster.connection import cluster_settings, get_cluster
from deployments.cluster.manifests import render
from deployments.cluster.operations import apply_statefulset
from deployments.models import ActivityEntry, Deployment, record_activity
from tests.support import wait_for

WORKLOADS = ("api", "redis")  # fastapi-redis in development: both are StatefulSets


def old_manifests(objects: list[dict]) -> list[dict]:
    """What Diploi rendered before: each StatefulSet governed by its regular Service, no headless ones."""
    old = []
    for obj in copy.deepcopy(objects):
        if obj["kind"] == "Service" and obj["spec"].get("clusterIP") == "None":
            continue
        if obj["kind"] == "StatefulSet":
            obj["spec"]["serviceName"] = obj["metadata"]["name"]
        old.append(obj)
    return old


def observed(cluster, namespace: str) -> dict:
    """uids of what must survive the move: the StatefulSets (which do not), their pods and claims."""
    return {
        kind: {item["metadata"]["name"]: item["metadata"]["uid"] for item in cluster.list(kind, namespace=namespace)[0]}
        for kind in ("StatefulSet", "Pod", "PersistentVolumeClaim")
    }


def all_ready(cluster, namespace: str) -> bool:
    sets, _ = cluster.list("StatefulSet", namespace=namespace)
    return len(sets) == len(WORKLOADS) and all((s.get("status") or {}).get("readyReplicas") == 1 for s in sets)


@pytest.fixture
def old_deployment(emulator, make_project, developer):
    """A development deployment as the previous Diploi applied it, running, with its volumes bound."""
    deployment = services.deployment_create(
        project=make_project("fastapi-redis"), name="old", stage="development", actor=developer, addons=["redis"]
    )
    cluster = get_cluster()
    target = Deployment.objects.get(pk=deployment.pk).render_target(with_credentials=True)
    for obj in old_manifests(render(target, cluster_settings())):
        cluster.apply(obj)
    wait_for(lambda: all_ready(cluster, deployment.namespace), timeout=30, what="the old StatefulSets ready")
    return deployment


def replacements(deployment) -> list[tuple[str, str]]:
    rows = ActivityEntry.objects.filter(deployment=deployment, action__startswith="workload.").order_by("pk")
    return [(row.action, row.message) for row in rows]


def test_an_old_deployment_moves_to_headless_services_keeping_its_pods_and_volumes(old_deployment):
    cluster, namespace = get_cluster(), old_deployment.namespace
    before = observed(cluster, namespace)
    assert {cluster.get("StatefulSet", n, namespace)["spec"]["serviceName"] for n in WORKLOADS} == set(WORKLOADS)

    assert lifecycle.reconcile_run(old_deployment.pk, owner="task-1") == "applied"
    assert old_deployment.operations.get().message == (
        "Applied 14 objects to the cluster; created again StatefulSet/redis, StatefulSet/api (pods and volumes "
        "kept); waiting for the rollout"
    )

    for name in WORKLOADS:
        workload = cluster.get("StatefulSet", name, namespace)
        assert workload["spec"]["serviceName"] == f"{name}-headless"
        assert workload["metadata"]["uid"] != before["StatefulSet"][name]
        headless = cluster.get("Service", f"{name}-headless", namespace)
        assert headless["spec"]["clusterIP"] == "None" and headless["metadata"]["labels"][L.SERVICE] == name
        assert cluster.get("Service", name, namespace)["spec"]["clusterIP"] != "None"  # clients' Service stays
    wait_for(
        lambda: all(
            (p["metadata"].get("ownerReferences") or [{}])[0].get("uid")
            == cluster.get("StatefulSet", p["metadata"]["name"].rsplit("-", 1)[0], namespace)["metadata"]["uid"]
            for p in cluster.list("Pod", namespace=namespace)[0]
        ),
        what="every pod adopted by its new StatefulSet",
    )
    wait_for(lambda: all_ready(cluster, namespace), what="the new StatefulSets ready")
    after = observed(cluster, namespace)
    assert after["Pod"] == before["Pod"]  # not one pod recreated
    assert after["PersistentVolumeClaim"] == before["PersistentVolumeClaim"]  # the same volumes, data kept
    assert replacements(old_deployment) == [
        (
            action,
            f"Replacing StatefulSet {name} (serviceName {name} → {name}-headless): deleting it without its pods "
            "and volumes, which keep running, to create it again"
            if action == "workload.replacing"
            else f"StatefulSet {name} created again; it adopted its pods, its volumes were kept",
        )
        for name in ("redis", "api")  # apply order: add-ons first
        for action in ("workload.replacing", "workload.replaced")
    ]

    # Safe to run twice: nothing is replaced again.
    assert lifecycle.reconcile_run(old_deployment.pk, owner="task-2") == "applied"
    assert observed(cluster, namespace)["StatefulSet"] == after["StatefulSet"]
    assert len(replacements(old_deployment)) == 4


@pytest.mark.django_db(transaction=True)
def test_a_replacement_interrupted_after_the_delete_is_completed_by_the_next_apply(old_deployment):
    cluster, namespace = get_cluster(), old_deployment.namespace
    before = observed(cluster, namespace)
    # A run that stopped right after deleting `api` (orphaning its pods): it is gone, its pods run on.
    api = Deployment.objects.get(pk=old_deployment.pk)
    record_activity(action="workload.replacing", message="Replacing StatefulSet api", deployment=api, statefulset="api")
    cluster.delete("StatefulSet", "api", namespace, propagation="Orphan")
    wait_for(lambda: cluster.get("StatefulSet", "api", namespace) is None, what="the old StatefulSet gone")
    # And one that stopped while `redis` was still terminating (held here by a finalizer of the test's own).
    cluster.merge_patch("StatefulSet", "redis", {"metadata": {"finalizers": ["tests.diploi.io/hold"]}}, namespace)
    cluster.delete("StatefulSet", "redis", namespace, propagation="Orphan")
    wait_for(
        lambda: (
            cluster.get("StatefulSet", "redis", namespace)["metadata"].get("finalizers") == ["tests.diploi.io/hold"]
        ),
        what="the garbage collector done orphaning redis's pods",
    )

    def release_once_replacing() -> None:
        # The old StatefulSet goes only once the apply is waiting for it (its "replacing" row is written).
        try:
            wait_for(
                lambda: ActivityEntry.objects.filter(action="workload.replacing", data__statefulset="redis").exists(),
                timeout=20,
                what="the replacement of redis under way",
            )
            cluster.merge_patch("StatefulSet", "redis", {"metadata": {"finalizers": None}}, namespace)
        finally:
            connection.close()

    release = threading.Thread(target=release_once_replacing)
    release.start()
    try:
        assert lifecycle.reconcile_run(old_deployment.pk, owner="task-2") == "applied"
    finally:
        release.join()

    for name in WORKLOADS:
        assert cluster.get("StatefulSet", name, namespace)["spec"]["serviceName"] == f"{name}-headless"
    wait_for(lambda: all_ready(cluster, namespace), what="the new StatefulSets ready")
    after = observed(cluster, namespace)
    assert after["Pod"] == before["Pod"] and after["PersistentVolumeClaim"] == before["PersistentVolumeClaim"]
    # api: replaced by this run after the one that deleted it; redis: waited for, then replaced.
    assert replacements(old_deployment) == [
        ("workload.replacing", "Replacing StatefulSet api"),  # the interrupted run's
        (
            "workload.replacing",
            "Replacing StatefulSet redis (serviceName redis → redis-headless): deleting it without its pods and "
            "volumes, which keep running, to create it again",
        ),
        ("workload.replaced", "StatefulSet redis created again; it adopted its pods, its volumes were kept"),
        ("workload.replaced", "StatefulSet api created again; it adopted its pods, its volumes were kept"),
    ]


def test_a_replacement_that_waits_too_long_is_a_temporary_error_and_deletes_nothing_more(old_deployment):
    cluster, namespace = get_cluster(), old_deployment.namespace
    cluster.merge_patch("StatefulSet", "redis", {"metadata": {"finalizers": ["tests.diploi.io/hold"]}}, namespace)
    target = Deployment.objects.get(pk=old_deployment.pk).render_target(with_credentials=True)
    redis = next(
        o for o in render(target, cluster_settings()) if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "redis"
    )
    pods = observed(cluster, namespace)["Pod"]
    with pytest.raises(errors.ClusterUnavailable, match="still being deleted after 1 s") as caught:
        apply_statefulset(cluster, redis, wait_seconds=1)
    assert caught.value.retryable
    assert observed(cluster, namespace)["Pod"] == pods  # its pods run on meanwhile
    cluster.merge_patch("StatefulSet", "redis", {"metadata": {"finalizers": None}}, namespace)
    wait_for(lambda: cluster.get("StatefulSet", "redis", namespace) is None, what="the old StatefulSet gone")
    assert apply_statefulset(cluster, redis) is False  # gone: a plain create, which adopts the pods
    wait_for(lambda: all_ready(cluster, namespace), what="redis ready again")
    assert observed(cluster, namespace)["Pod"] == pods


def test_any_other_refusal_of_a_statefulset_is_an_error_and_nothing_is_deleted(old_deployment):
    cluster, namespace = get_cluster(), old_deployment.namespace
    target = Deployment.objects.get(pk=old_deployment.pk).render_target(with_credentials=True)
    redis = next(
        o for o in render(target, cluster_settings()) if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "redis"
    )
    redis["spec"]["template"]["spec"]["containers"][0]["name"] = "Not_Valid"  # refused on create too
    uid = cluster.get("StatefulSet", "redis", namespace)["metadata"]["uid"]
    with pytest.raises(errors.Invalid):
        apply_statefulset(cluster, redis)
    assert cluster.get("StatefulSet", "redis", namespace)["metadata"]["uid"] == uid
