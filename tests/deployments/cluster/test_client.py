"""The cluster layer through the real client, against the emulator over HTTP."""

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from kubernetes import client as k8s

from deployments.cluster import errors
from deployments.cluster import labels as L
from deployments.cluster.client import Cluster
from deployments.cluster.environment import missing_secrets
from deployments.cluster.manifests import ClusterSettings, RenderTarget, render
from deployments.cluster.operations import (
    apply_objects,
    claims_of,
    delete_claims,
    delete_namespace,
    describe,
    leftovers,
)
from deployments.sizes import SIZES
from templates_catalog.validation import parse_template
from tests.support import versions_a_noop_apply_keeps, wait_for

CATALOG = Path(__file__).resolve().parents[3] / "templates_catalog" / "catalog"
CLUSTER = ClusterSettings(base_domain="apps.example.com")


def spec_of(slug):
    return parse_template((CATALOG / f"{slug}.yaml").read_text(), f"{slug}.yaml")


@pytest.fixture
def cluster(emulator):
    cluster = Cluster(cluster_configuration(emulator), timeout=5)
    yield cluster
    cluster.close()


def target(slug="fastapi-redis", stage="development", deployment_id=7, **changes):
    spec = spec_of(slug)
    base = RenderTarget(
        deployment_id=deployment_id,
        name="feature-x",
        project="shop",
        namespace=f"shop-feature-x-{deployment_id}",
        stage=stage,
        spec=spec,
        repository="https://github.com/acme/shop.git",
        branch="main",
        size=SIZES["small"],
        generated_secrets=missing_secrets(spec, {}),
        # What staging and production run: images built from the repository, pinned by digest.
        built_images={c.id: f"registry.example.com/diploi/shop/{c.id}@sha256:{'e' * 64}" for c in spec.components},
    )
    return replace(base, **changes)


@pytest.mark.parametrize("stage", ["development", "staging", "production"])
def test_it_applies_a_deployment_of_each_stage_and_reapplying_changes_nothing(cluster, stage):
    desired = target(stage=stage)
    objects = render(desired, CLUSTER)
    result = apply_objects(cluster, objects, deployment_id=7)
    assert len(result.applied) == len(objects) and result.pruned == []
    for obj in objects:
        meta = obj["metadata"]
        assert cluster.get(obj["kind"], meta["name"], meta.get("namespace")) is not None
    before = versions_a_noop_apply_keeps(cluster, desired.namespace)
    again = apply_objects(cluster, render(desired, CLUSTER), deployment_id=7)
    assert again.pruned == []
    assert versions_a_noop_apply_keeps(cluster, desired.namespace) == before


SHIPPED = sorted(path.stem for path in CATALOG.glob("*.yaml"))


@pytest.mark.parametrize("slug", SHIPPED)
def test_every_shipped_template_gets_its_pods_past_its_namespaces_pod_security(emulator, cluster, slug):
    """The emulator enforces Pod Security Admission as a real server does: a container breaking its
    namespace's level would leave its workload without pods and a FailedCreate event."""
    core = k8s.CoreV1Api(k8s.ApiClient(cluster_configuration(emulator)))
    for number, stage in enumerate(spec_of(slug).stages):
        desired = target(slug, stage, deployment_id=400 + SHIPPED.index(slug) * 10 + number)
        objects = render(desired, CLUSTER)
        apply_objects(cluster, objects, deployment_id=desired.deployment_id)
        wanted = sum(o["spec"]["replicas"] for o in objects if o["kind"] in ("Deployment", "StatefulSet"))
        wait_for(
            lambda namespace=desired.namespace, wanted=wanted: len(core.list_namespaced_pod(namespace).items) >= wanted,
            what=f"{slug} {stage}: {wanted} pods",
        )
        refused = [
            event.message
            for event in core.list_namespaced_event(desired.namespace).items
            if event.reason == "FailedCreate" and "PodSecurity" in event.message
        ]
        assert refused == []


def cluster_configuration(emulator) -> k8s.Configuration:
    configuration = k8s.Configuration()
    configuration.host = emulator.url
    return configuration


def test_it_prunes_a_removed_addon_but_keeps_its_storage_until_asked(cluster):
    with_redis = target(addons=frozenset({"redis"}))
    apply_objects(cluster, render(with_redis, CLUSTER), deployment_id=7)
    wait_for(
        lambda: claims_of(cluster, namespace=with_redis.namespace, deployment_id=7, service_id="redis"),
        what="redis claim",
    )

    without = replace(with_redis, addons=frozenset())
    result = apply_objects(cluster, render(without, CLUSTER), deployment_id=7)
    assert set(result.pruned) == {
        "StatefulSet/redis",
        "Service/redis",
        "Service/redis-headless",
        "Secret/redis-env",
    }
    assert cluster.get("StatefulSet", "redis", without.namespace) is None
    kept = claims_of(cluster, namespace=without.namespace, deployment_id=7, service_id="redis")
    assert [c["metadata"]["name"] for c in kept] == ["data-redis-0"]

    assert delete_claims(cluster, namespace=without.namespace, deployment_id=7, service_id="redis") == ["data-redis-0"]
    wait_for(
        lambda: not claims_of(cluster, namespace=without.namespace, deployment_id=7, service_id="redis"),
        what="the redis claim to go",
    )


def pods_of(cluster, namespace, service):
    items, _ = cluster.list("Pod", namespace=namespace, label_selector=f"{L.SERVICE}={service}")
    return items


def ready(pod) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions", []))


def test_it_restarts_one_component_keeping_the_development_code_volume(cluster):
    desired = target(stage="development")
    apply_objects(cluster, render(desired, CLUSTER), deployment_id=7)
    first = wait_for(lambda: [p for p in pods_of(cluster, desired.namespace, "api") if ready(p)], what="api ready")[0]
    claim = wait_for(lambda: cluster.get("PersistentVolumeClaim", "code-api-0", desired.namespace), what="code claim")

    restarted = replace(desired, restart_marks={"api": "2026-11-26T12:00:00+00:00"})
    apply_objects(cluster, render(restarted, CLUSTER), deployment_id=7)
    sts = cluster.get("StatefulSet", "api", desired.namespace)
    assert sts["spec"]["template"]["metadata"]["annotations"][L.RESTARTED_AT_ANNOTATION] == "2026-11-26T12:00:00+00:00"
    assert L.RESTARTED_AT_ANNOTATION not in cluster.get("StatefulSet", "redis", desired.namespace)["spec"]["template"][
        "metadata"
    ].get("annotations", {})

    def new_pod_ready():
        pods = [p for p in pods_of(cluster, desired.namespace, "api") if ready(p)]
        return pods and pods[0]["metadata"]["uid"] != first["metadata"]["uid"] and pods[0]

    wait_for(new_pod_ready, timeout=15, what="a new api pod")
    assert (
        cluster.get("PersistentVolumeClaim", "code-api-0", desired.namespace)["metadata"]["uid"]
        == claim["metadata"]["uid"]
    )


def test_it_deletes_everything_and_confirms_it_is_gone_even_twice(cluster):
    desired = target(stage="production", addons=frozenset({"redis"}))
    apply_objects(cluster, render(desired, CLUSTER), deployment_id=7)
    wait_for(lambda: claims_of(cluster, namespace=desired.namespace, deployment_id=7), what="claims")
    assert delete_namespace(cluster, desired.namespace) is True
    assert leftovers(cluster, namespace=desired.namespace, deployment_id=7)
    delete_namespace(cluster, desired.namespace)  # asking again while it terminates is fine
    wait_for(
        lambda: leftovers(cluster, namespace=desired.namespace, deployment_id=7) == [], timeout=15, what="all gone"
    )
    assert delete_namespace(cluster, desired.namespace) is False


def test_it_deletes_a_half_created_deployment(cluster):
    desired = target()
    objects = render(desired, CLUSTER)
    for obj in objects[:3]:
        cluster.apply(obj)
    delete_namespace(cluster, desired.namespace)
    wait_for(
        lambda: leftovers(cluster, namespace=desired.namespace, deployment_id=7) == [], timeout=15, what="all gone"
    )


def test_it_watches_a_pod_go_from_pending_to_running(cluster):
    desired = target(stage="production")
    _, version = cluster.list("Pod", label_selector=L.deployment_selector(7))
    apply_objects(cluster, render(desired, CLUSTER), deployment_id=7)
    phases = []
    stop = threading.Event()
    for event in cluster.watch(
        "Pod", resource_version=version, label_selector=L.deployment_selector(7), timeout_seconds=10, stop=stop
    ):
        if event.type == "BOOKMARK" or event.object["metadata"].get("labels", {}).get(L.SERVICE) != "api":
            continue
        phases.append((event.object["status"].get("phase"), ready(event.object)))
        if ready(event.object):
            break
    assert phases[0] == ("Pending", False)
    assert phases[-1] == ("Running", True)


def test_interrupting_one_callers_watches_leaves_the_others_open(cluster):
    _, version = cluster.list("Namespace")
    stops = {"mine": threading.Event(), "theirs": threading.Event()}
    connected = {"mine": threading.Event(), "theirs": threading.Event()}
    seen = {"mine": [], "theirs": []}
    failures = []

    def read(name):
        try:
            for event in cluster.watch(
                "Namespace", resource_version=version, stop=stops[name], on_connected=connected[name].set
            ):
                seen[name].append(event.type)
        except errors.ClusterError as error:
            failures.append((name, error))

    readers = {name: threading.Thread(target=read, args=(name,)) for name in stops}
    for reader in readers.values():
        reader.start()
    assert all(event.wait(5) for event in connected.values())

    stops["mine"].set()
    cluster.interrupt_watches(stops["mine"])
    readers["mine"].join(5)
    assert not readers["mine"].is_alive() and not failures  # mine ended quietly

    cluster.apply(render(target(), CLUSTER)[0])  # a namespace: theirs still reads
    wait_for(lambda: "ADDED" in seen["theirs"], timeout=20, what="theirs to see the new namespace")
    stops["theirs"].set()
    cluster.interrupt_watches()
    readers["theirs"].join(5)
    assert not readers["theirs"].is_alive() and not failures and seen["mine"] == []


def test_it_says_a_watch_expired_so_the_caller_lists_again(cluster, emulator):
    _, version = cluster.list("Pod")
    cluster.apply(render(target(), CLUSTER)[0])
    emulator.faults.expire_history()
    with pytest.raises(errors.WatchExpired):
        for _ in cluster.watch("Pod", resource_version=version, timeout_seconds=5):
            pass
    _, fresh = cluster.list("Pod")
    assert fresh


def test_it_maps_api_errors_to_types_that_say_whether_to_retry(cluster, emulator):
    bad = render(target(), CLUSTER)[0] | {"spec": {"finalizers": "not-a-list"}}
    with pytest.raises(errors.Invalid) as invalid:
        cluster.apply(bad)
    assert not invalid.value.retryable and "finalizers" in invalid.value.message

    with pytest.raises(errors.NotFound):
        cluster.request("GET", "/api/v1/namespaces/nowhere/pods/nothing")

    emulator.faults.fail_requests(status=500, count=1)
    with pytest.raises(errors.ClusterUnavailable) as unavailable:
        cluster.get("Namespace", "default")
    assert unavailable.value.retryable

    emulator.take_down()
    with pytest.raises(errors.ClusterUnavailable, match="cannot be reached"):
        cluster.get("Namespace", "default")
    emulator.bring_up()
    assert cluster.get("Namespace", "default") is not None


def test_it_reads_cpu_from_the_metrics_api_and_describes_a_service(cluster):
    desired = target(stage="production")
    apply_objects(cluster, render(desired, CLUSTER), deployment_id=7)
    metrics = wait_for(lambda: cluster.pod_metrics(label_selector=L.deployment_selector(7)), what="pod metrics")
    assert metrics[0]["containers"][0]["usage"]["cpu"]
    text = describe(cluster, namespace=desired.namespace, deployment_id=7, service_id="api")
    assert "kind: Deployment" in text and "managedFields" not in text
    assert "# Recent events" in text and "Scheduled" in text


# ----------------------------------------------------------------------------- strict apply (issue 15, item 10b)

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "strict-apply"}}


def test_every_apply_asks_for_strict_field_validation(cluster, emulator):
    # Only a request carrying fieldValidation=Strict meets this fault.
    emulator.faults.fail_requests(status=400, count=1, path_contains="fieldValidation=Strict", message="strict seen")

    with pytest.raises(errors.Invalid, match="strict seen"):
        cluster.apply(NAMESPACE)


def test_a_schema_rejection_answered_with_500_is_permanent_and_keeps_the_servers_message(cluster, emulator):
    message = (
        'failed to create typed patch object (/v1, Kind=Namespace) "strict-apply": .spec.nonsense: '
        "field not declared in schema"
    )
    emulator.faults.fail_requests(status=500, count=1, methods="PATCH", message=message)

    with pytest.raises(errors.Invalid) as refused:
        cluster.apply(NAMESPACE)

    assert not refused.value.retryable
    assert str(refused.value) == message


def test_any_other_500_stays_temporary(cluster, emulator):
    emulator.faults.fail_requests(status=500, count=1, methods="PATCH", message="etcdserver: request timed out")

    with pytest.raises(errors.ClusterUnavailable) as failed:
        cluster.apply(NAMESPACE)

    assert failed.value.retryable


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_a_429_says_how_long_to_wait_and_the_process_waits_that_long(emulator, method):
    import time

    cluster = Cluster.from_settings()  # the configuration Diploi's processes use
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "throttled"}}

    def send():
        return cluster.list("Namespace") if method == "GET" else cluster.apply(namespace)

    emulator.faults.fail_requests(status=429, count=1, retry_after=2)
    started = time.monotonic()
    with pytest.raises(errors.ClusterUnavailable) as throttled:
        send()
    assert time.monotonic() - started < 2  # answered at once: the client does not sleep the 2 s itself
    assert throttled.value.retryable and throttled.value.retry_after == 2
    assert throttled.value.message.startswith(
        "The Kubernetes API is throttling Diploi's requests (429, retry after 2 s)"
    )
    # Until then nothing more is sent: the server would only refuse it again.
    with pytest.raises(errors.ClusterUnavailable, match="asked Diploi to wait") as waiting:
        send()
    assert 0 < waiting.value.retry_after <= 2
    assert len(emulator.faults.answered()) == 1
    wait_for(lambda: send(), timeout=20, interval=0.2, what="the request to go through after Retry-After")
    assert time.monotonic() - started >= 2
    cluster.close()


def test_a_503_with_retry_after_is_unavailable_not_unreachable(emulator):
    cluster = Cluster.from_settings()
    emulator.faults.fail_requests(status=503, count=1, retry_after=1)
    with pytest.raises(errors.ClusterUnavailable) as unavailable:
        cluster.get("Namespace", "default")
    assert unavailable.value.message.startswith("The Kubernetes API is unavailable (503)")
    assert unavailable.value.retry_after == 1
    cluster.close()
