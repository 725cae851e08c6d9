"""Deployments, StatefulSets and Jobs come to life like on a real cluster."""

from __future__ import annotations

import pytest
from kubernetes import client, watch

from .conftest import apply, deployment, eventually, pods_of, ready, statefulset

WEB = "diploi.io/component=web"
DB = "diploi.io/component=db"


def wait_deployment_ready(apps, namespace, name, replicas):
    def check():
        d = apps.read_namespaced_deployment(name, namespace)
        s = d.status
        return (
            s.observed_generation == d.metadata.generation
            and (s.ready_replicas or 0) == replicas
            and (s.updated_replicas or 0) == replicas
            and (s.replicas or 0) == replicas
            and d
        )

    return eventually(check, message=f"deployment {name} ready with {replicas} replicas")


def test_it_brings_a_deployment_to_ready_observed_through_a_watch(apps, core, namespace):
    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace, replicas=2))
    phases: dict[str, list[str]] = {}
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_pod, namespace, label_selector=WEB, resource_version=rv, timeout_seconds=10
    ):
        pod = event["object"]
        seen = phases.setdefault(pod.metadata.name, [])
        state = "Ready" if ready(pod) else pod.status.phase
        if not seen or seen[-1] != state:
            seen.append(state)
        if len(phases) == 2 and all(s[-1] == "Ready" for s in phases.values()):
            w.stop()
    assert len(phases) == 2
    for states in phases.values():
        assert states[0] == "Pending" and "Running" in states and states[-1] == "Ready"
    pod = pods_of(core, namespace, WEB)[0]
    assert pod.spec.node_name == "emulator-node" and pod.status.pod_ip.startswith("10.244.")
    assert pod.metadata.labels["pod-template-hash"]
    web = pod.status.container_statuses[0]
    assert web.ready and web.started and web.restart_count == 0 and web.state.running.started_at
    assert web.image == "docker.io/library/nginx:1.27" and web.image_id.startswith("docker.io/library/nginx@sha256:")
    assert [c.type for c in pod.status.conditions] == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    d = wait_deployment_ready(apps, namespace, "web", 2)
    conditions = {c.type: (c.status, c.reason) for c in d.status.conditions}
    assert conditions == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    assert d.status.available_replicas == 2


def test_it_records_pod_events(apps, core, namespace):
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace))
    wait_deployment_ready(apps, namespace, "web", 1)
    pod = pods_of(core, namespace, WEB)[0]

    def reasons():
        events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod.metadata.name}")
        return {e.reason for e in events.items}

    assert eventually(lambda: {"Scheduled", "Pulling", "Pulled", "Created", "Started"} <= reasons())
    scheduled = [e for e in core.list_namespaced_event(namespace).items if e.reason == "Scheduled"][0]
    assert scheduled.type == "Normal" and scheduled.count == 1 and scheduled.involved_object.kind == "Pod"
    assert scheduled.source.component == "default-scheduler"
    rs_events = [
        e.reason for e in core.list_namespaced_event(namespace, field_selector="involvedObject.kind=ReplicaSet").items
    ]
    assert "SuccessfulCreate" in rs_events


def test_it_scales_a_deployment_to_zero_and_back(apps, core, namespace):
    manifest = deployment("web", namespace, replicas=2)
    apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    wait_deployment_ready(apps, namespace, "web", 2)
    manifest["spec"]["replicas"] = 0
    apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    eventually(lambda: not pods_of(core, namespace, WEB), message="pods gone")
    d = apps.read_namespaced_deployment("web", namespace)
    assert not d.status.replicas and not d.status.ready_replicas
    manifest["spec"]["replicas"] = 1
    apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    wait_deployment_ready(apps, namespace, "web", 1)


def test_it_rolls_deployment_pods_when_the_template_changes(apps, core, namespace):
    manifest = deployment("web", namespace, replicas=2)
    apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)
    wait_deployment_ready(apps, namespace, "web", 2)
    before = {p.metadata.name for p in pods_of(core, namespace, WEB)}
    manifest["spec"]["template"]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"
    }
    apply(apps.patch_namespaced_deployment, "web", namespace, body=manifest)

    def rolled():
        pods = pods_of(core, namespace, WEB)
        names = {p.metadata.name for p in pods}
        return len(pods) == 2 and not names & before and all(ready(p) for p in pods)

    eventually(rolled, message="new pods ready, old pods gone")
    d = wait_deployment_ready(apps, namespace, "web", 2)
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    sets = apps.list_namespaced_replica_set(namespace).items
    assert len(sets) == 2
    assert sorted(rs.spec.replicas for rs in sets) == [0, 2]


def test_it_brings_a_statefulset_up_in_order_with_its_claims(apps, core, namespace):
    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=statefulset("db", namespace, replicas=2))
    added = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, namespace, resource_version=rv, timeout_seconds=10):
        pod = event["object"]
        if event["type"] == "ADDED":
            added.append(pod.metadata.name)
            if pod.metadata.name == "db-1":
                assert ready(core.read_namespaced_pod("db-0", namespace)), "db-1 created before db-0 was ready"
        if pod.metadata.name == "db-1" and ready(pod):
            w.stop()
    assert added == ["db-0", "db-1"]
    claims = {c.metadata.name: c for c in core.list_namespaced_persistent_volume_claim(namespace).items}
    assert set(claims) == {"data-db-0", "data-db-1"}
    claim = claims["data-db-0"]
    assert claim.status.phase == "Bound" and claim.status.capacity["storage"] == "1Gi"
    assert claim.metadata.labels["diploi.io/volume"] == "data"
    assert claim.metadata.labels["diploi.io/component"] == "db"
    assert core.read_persistent_volume(claim.spec.volume_name).status.phase == "Bound"
    pod = core.read_namespaced_pod("db-0", namespace)
    assert pod.metadata.labels["statefulset.kubernetes.io/pod-name"] == "db-0"
    assert {v.persistent_volume_claim.claim_name for v in pod.spec.volumes if v.persistent_volume_claim} == {
        "data-db-0"
    }
    sts = eventually(lambda: (s := apps.read_namespaced_stateful_set("db", namespace)).status.ready_replicas == 2 and s)
    assert sts.status.current_revision == sts.status.update_revision
    assert sts.status.observed_generation == 1


def test_it_rolls_statefulset_pods_keeping_their_claims(apps, core, namespace):
    manifest = statefulset("db", namespace, replicas=2)
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=manifest)
    eventually(lambda: apps.read_namespaced_stateful_set("db", namespace).status.ready_replicas == 2)
    pods = {p.metadata.name: p.metadata.uid for p in pods_of(core, namespace, DB)}
    claims = {c.metadata.name: c.metadata.uid for c in core.list_namespaced_persistent_volume_claim(namespace).items}
    first_revision = apps.read_namespaced_stateful_set("db", namespace).status.update_revision
    manifest["spec"]["template"]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"
    }
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=manifest)

    def rolled():
        sts = apps.read_namespaced_stateful_set("db", namespace)
        s = sts.status
        return (
            s.update_revision != first_revision
            and s.current_revision == s.update_revision
            and s.ready_replicas == 2
            and s.updated_replicas == 2
            and sts
        )

    eventually(rolled, message="statefulset rolled")
    after = {p.metadata.name: p.metadata.uid for p in pods_of(core, namespace, DB)}
    assert set(after) == set(pods) and not set(after.values()) & set(pods.values())
    claims_after = {
        c.metadata.name: c.metadata.uid for c in core.list_namespaced_persistent_volume_claim(namespace).items
    }
    assert claims_after == claims


def test_it_keeps_claims_when_a_statefulset_is_deleted(apps, core, namespace):
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=statefulset("db", namespace))
    eventually(lambda: apps.read_namespaced_stateful_set("db", namespace).status.ready_replicas == 1)
    claim_uid = core.read_namespaced_persistent_volume_claim("data-db-0", namespace).metadata.uid
    apps.delete_namespaced_stateful_set("db", namespace)
    eventually(lambda: not pods_of(core, namespace, DB), message="pods gone")
    claim = core.read_namespaced_persistent_volume_claim("data-db-0", namespace)
    assert claim.metadata.uid == claim_uid and claim.status.phase == "Bound"
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=statefulset("db", namespace))
    eventually(lambda: apps.read_namespaced_stateful_set("db", namespace).status.ready_replicas == 1)
    assert core.read_namespaced_persistent_volume_claim("data-db-0", namespace).metadata.uid == claim_uid


def test_an_orphaning_delete_keeps_the_pods_and_a_new_statefulset_adopts_them(apps, core, namespace):
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=statefulset("db", namespace, replicas=2))
    eventually(lambda: apps.read_namespaced_stateful_set("db", namespace).status.ready_replicas == 2)
    old_uid = apps.read_namespaced_stateful_set("db", namespace).metadata.uid
    pods = {p.metadata.name: p.metadata.uid for p in pods_of(core, namespace, DB)}
    claims = {c.metadata.name: c.metadata.uid for c in core.list_namespaced_persistent_volume_claim(namespace).items}
    rv = apps.list_namespaced_stateful_set(namespace).metadata.resource_version

    apps.delete_namespaced_stateful_set("db", namespace, body=client.V1DeleteOptions(propagation_policy="Orphan"))
    # Like a real server: terminating with the `orphan` finalizer until the garbage collector is done.
    seen = []
    w = watch.Watch()
    for event in w.stream(apps.list_namespaced_stateful_set, namespace, resource_version=rv, timeout_seconds=10):
        meta = event["object"].metadata
        seen.append((event["type"], meta.finalizers, meta.deletion_timestamp is not None))
        if event["type"] == "DELETED":
            w.stop()
    assert seen[0] == ("MODIFIED", ["orphan"], True) and seen[-1][0] == "DELETED"
    survivors = pods_of(core, namespace, DB)
    assert {p.metadata.name: p.metadata.uid for p in survivors} == pods
    assert all(not p.metadata.owner_references and p.metadata.deletion_timestamp is None for p in survivors)

    replacement = statefulset("db", namespace, replicas=2)
    replacement["spec"]["serviceName"] = "db-headless"  # what could not change in place
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=replacement)
    new_uid = apps.read_namespaced_stateful_set("db", namespace).metadata.uid
    assert new_uid != old_uid

    def adopted():
        current = pods_of(core, namespace, DB)
        return (
            all(p.metadata.owner_references and p.metadata.owner_references[0].uid == new_uid for p in current)
            and {p.metadata.name: p.metadata.uid for p in current} == pods
        )

    eventually(adopted, message="the same pods owned by the new StatefulSet")
    status = eventually(
        lambda: (s := apps.read_namespaced_stateful_set("db", namespace).status).ready_replicas == 2 and s
    )
    assert status.current_revision == status.update_revision  # same template: nothing to roll
    assert {p.metadata.name: p.metadata.uid for p in pods_of(core, namespace, DB)} == pods
    assert {c.metadata.name: c.metadata.uid for c in core.list_namespaced_persistent_volume_claim(namespace).items} == (
        claims
    )
    # Pod specs are immutable: an adopted pod keeps its old subdomain until it is next replaced.
    assert core.read_namespaced_pod("db-0", namespace).spec.subdomain == "db"


def test_a_new_statefulset_with_another_template_rolls_the_pods_it_adopted_in_order(apps, core, namespace):
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=statefulset("db", namespace, replicas=2))
    eventually(lambda: apps.read_namespaced_stateful_set("db", namespace).status.ready_replicas == 2)
    claims = {c.metadata.name: c.metadata.uid for c in core.list_namespaced_persistent_volume_claim(namespace).items}
    apps.delete_namespaced_stateful_set("db", namespace, body=client.V1DeleteOptions(propagation_policy="Orphan"))
    eventually(lambda: not apps.list_namespaced_stateful_set(namespace).items, message="the StatefulSet gone")
    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    replacement = statefulset("db", namespace, replicas=2, annotations={"changed": "yes"})
    replacement["spec"]["serviceName"] = "db-headless"
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=replacement)
    events = eventually(
        lambda: (
            [
                (e["type"], e["object"].metadata.name)
                for e in watch.Watch().stream(
                    core.list_namespaced_pod, namespace, resource_version=rv, timeout_seconds=1
                )
            ]
            if apps.read_namespaced_stateful_set("db", namespace).status.updated_replicas == 2
            else None
        ),
        timeout=15,
        message="both pods replaced",
    )
    deleted = [name for kind, name in events if kind == "DELETED"]
    assert deleted == ["db-1", "db-0"]  # from the highest ordinal down, one at a time
    eventually(lambda: apps.read_namespaced_stateful_set("db", namespace).status.ready_replicas == 2)
    assert core.read_namespaced_pod("db-0", namespace).spec.subdomain == "db-headless"
    assert {c.metadata.name: c.metadata.uid for c in core.list_namespaced_persistent_volume_claim(namespace).items} == (
        claims
    )


def test_it_scales_a_statefulset_to_zero_and_back(apps, core, namespace):
    manifest = statefulset("db", namespace, replicas=1)
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=manifest)
    eventually(lambda: apps.read_namespaced_stateful_set("db", namespace).status.ready_replicas == 1)
    manifest["spec"]["replicas"] = 0
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=manifest)
    eventually(lambda: not pods_of(core, namespace, DB))
    assert [c.metadata.name for c in core.list_namespaced_persistent_volume_claim(namespace).items] == ["data-db-0"]
    manifest["spec"]["replicas"] = 1
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=manifest)
    eventually(lambda: apps.read_namespaced_stateful_set("db", namespace).status.ready_replicas == 1)


def test_it_keeps_a_pod_pending_until_its_claim_is_bound(core, namespace):
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "needs-claim"},
            "spec": {
                "containers": [
                    {"name": "app", "image": "busybox:1.36", "volumeMounts": [{"name": "d", "mountPath": "/d"}]}
                ],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "late"}}],
            },
        },
    )

    def unschedulable():
        pod = core.read_namespaced_pod("needs-claim", namespace)
        return pod.status.phase == "Pending" and any(
            c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
            for c in pod.status.conditions or ()
        )

    eventually(unschedulable)
    assert core.read_namespaced_pod("needs-claim", namespace).spec.node_name is None
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "late"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    eventually(lambda: ready(core.read_namespaced_pod("needs-claim", namespace)))


def test_it_runs_init_containers_first(core, namespace):
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "with-init"},
            "spec": {
                "initContainers": [{"name": "migrate", "image": "busybox:1.36"}],
                "containers": [{"name": "app", "image": "busybox:1.36"}],
            },
        },
    )
    pod = eventually(lambda: (p := core.read_namespaced_pod("with-init", namespace)) and ready(p) and p)
    init = pod.status.init_container_statuses[0]
    assert init.state.terminated.reason == "Completed" and init.state.terminated.exit_code == 0
    assert init.state.terminated.finished_at <= pod.status.container_statuses[0].state.running.started_at


def test_it_runs_a_job_to_completion(batch, core, namespace):
    batch.create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "migrate"},
            "spec": {
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": "busybox:1.36"}]}
                }
            },
        },
    )

    def complete():
        job = batch.read_namespaced_job("migrate", namespace)
        return any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or ()) and job

    job = eventually(complete)
    assert job.status.succeeded == 1 and not job.status.active and job.status.completion_time
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=migrate").items
    assert [p.status.phase for p in pods] == ["Succeeded"]
    assert pods[0].status.container_statuses[0].state.terminated.reason == "Completed"


def test_it_garbage_collects_what_a_deployment_owns(apps, core, namespace):
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace))
    wait_deployment_ready(apps, namespace, "web", 1)
    apps.delete_namespaced_deployment("web", namespace)
    eventually(lambda: not apps.list_namespaced_replica_set(namespace).items and not pods_of(core, namespace, WEB))


def test_it_terminates_deleted_pods_gracefully(apps, core, namespace):
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace))
    wait_deployment_ready(apps, namespace, "web", 1)
    pod = pods_of(core, namespace, WEB)[0]
    deleted = core.delete_namespaced_pod(pod.metadata.name, namespace)
    assert deleted.metadata.deletion_timestamp and deleted.metadata.deletion_grace_period_seconds == 30
    terminating = core.read_namespaced_pod(pod.metadata.name, namespace)
    assert terminating.metadata.deletion_timestamp
    eventually(lambda: pod.metadata.name not in {p.metadata.name for p in pods_of(core, namespace, WEB)})
    eventually(lambda: len(pods_of(core, namespace, WEB)) == 1)  # replaced by the ReplicaSet
    with pytest.raises(client.ApiException):
        core.read_namespaced_pod(pod.metadata.name, namespace)
