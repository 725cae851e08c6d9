"""What Diploi does to a cluster for a deployment: apply, prune, delete, verify, describe.

Each function takes a `Cluster` and plain values (no models), is idempotent,
and raises `deployments.cluster.errors` types.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from deployments.cluster import errors
from deployments.cluster import labels as L
from deployments.cluster.client import Cluster
from deployments.cluster.manifests import object_key
from deployments.cluster.resources import PRUNABLE_KINDS

logger = logging.getLogger(__name__)


# Told of a StatefulSet replacement: (event, name, message). Events: "replacing" (before the delete),
# "replaced" (created again), "created" (a plain create, which completes a replacement an earlier run left
# after its delete, if one was under way: the caller knows from its records).
Notify = Callable[[str, str, str], None]


@dataclass
class ApplyResult:
    applied: list[tuple[str, str, str, str]] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    # StatefulSets created again because a field fixed at creation changed (`apply_statefulset`).
    replaced: list[str] = field(default_factory=list)


def apply_objects(
    cluster: Cluster, objects: list[dict], *, deployment_id: int, notify: Notify | None = None
) -> ApplyResult:
    """Server-side apply every object (namespace first, one request each), then prune what is no longer desired.

    Re-applying unchanged objects changes nothing in the cluster. Claims are
    never pruned here (see `delete_claims`). A StatefulSet whose fixed fields
    changed is replaced, its pods and claims kept (`apply_statefulset`; ``notify`` hears of it).
    """
    result = ApplyResult()
    for obj in objects:
        if obj["kind"] == "StatefulSet":
            if apply_statefulset(cluster, obj, notify=notify):
                result.replaced.append(f"StatefulSet/{obj['metadata']['name']}")
        else:
            cluster.apply(obj)
        result.applied.append(object_key(obj))
    namespace = objects[0]["metadata"]["name"]
    result.pruned = prune(cluster, namespace=namespace, deployment_id=deployment_id, keep=set(result.applied))
    return result


# How a real API server refuses a StatefulSet update that touches a field outside the few it may change
# (serviceName, volumeClaimTemplates, selector, podManagementPolicy, ...): 422, one cause on `spec`.
STATEFULSET_FIXED_FIELDS = "updates to statefulset spec for fields other than"
# How long a replacement waits for the old StatefulSet to go (the garbage collector orphaning its pods).
REPLACE_WAIT_SECONDS = 30


def fixed_fields_conflict(error: errors.ClusterError) -> bool:
    """Whether the server refused a StatefulSet update only because it changes fields fixed at creation:
    the one refusal that creating the object again resolves. Any other cause (an invalid template, say)
    would be refused on create too, so it stays an error and nothing is deleted."""
    return (
        isinstance(error, errors.Invalid)
        and error.status == 422
        and bool(error.causes)
        and all(
            cause.get("field") == "spec"
            and cause.get("reason") == "FieldValueForbidden"
            and STATEFULSET_FIXED_FIELDS in cause.get("message", "")
            for cause in error.causes
        )
    )


def apply_statefulset(
    cluster: Cluster,
    obj: dict,
    *,
    notify: Notify | None = None,
    wait_seconds: int = REPLACE_WAIT_SECONDS,
) -> bool:
    """Server-side apply a StatefulSet; when fields fixed at creation differ (a new `serviceName`, say),
    replace it: delete it with propagationPolicy=Orphan (its pods keep running, its claims and their data
    stay), wait until it is gone, apply it again (a create), and it adopts its pods. True when replaced.
    ``notify`` is told of each step (`Notify`).

    Idempotent and safe to interrupt anywhere (kopf-style): a run that stopped after the delete finds the
    StatefulSet terminating (the apply answers with its deletionTimestamp, or is refused again) or gone
    (the apply creates it), and completes the replacement. Waiting longer than ``wait_seconds`` is a
    temporary `ClusterUnavailable`: the task tries again.
    """
    meta = obj["metadata"]
    name = meta["name"]
    notify = notify or (lambda event, name, message: None)
    try:
        applied, created = cluster.apply_reporting(obj)
    except errors.Invalid as error:
        if not fixed_fields_conflict(error):
            raise
        logger.warning("replacing StatefulSet %s/%s: %s", meta["namespace"], name, error)
    else:
        if created:
            notify("created", name, _replaced_words(name))
        if not (applied.get("metadata") or {}).get("deletionTimestamp"):
            return False
    by_name = f"metadata.name={name}"
    items, version = cluster.list("StatefulSet", namespace=meta["namespace"], field_selector=by_name)
    if items:
        notify(
            "replacing",
            name,
            f"Replacing StatefulSet {name} ({_fixed_changes(items[0], obj)}): deleting it "
            "without its pods and volumes, which keep running, to create it again",
        )
        _delete_orphaning(cluster, items[0], version, wait_seconds=wait_seconds)
    again = cluster.apply(obj)
    if (again.get("metadata") or {}).get("deletionTimestamp"):
        # Deleted again by someone else in the meantime: the next attempt replaces it once more.
        raise errors.ClusterUnavailable(f"StatefulSet {name} was deleted again while being replaced")
    notify("replaced", name, _replaced_words(name))
    return True


def _replaced_words(name: str) -> str:
    return f"StatefulSet {name} created again; it adopted its pods, its volumes were kept"


def _fixed_changes(old: dict, new: dict) -> str:
    """What changed among the fields fixed at creation, in words (serviceName is the one we know to say)."""
    before, after = (old.get("spec") or {}).get("serviceName"), new["spec"].get("serviceName")
    if before != after:
        return f"serviceName {before} → {after}"
    return "fields fixed at creation changed"


def _delete_orphaning(cluster: Cluster, current: dict, version: str, *, wait_seconds: int) -> None:
    """Delete one StatefulSet (as listed at ``version``) leaving its pods and claims in place, and wait until
    it is gone: a watch on that one object from the list's resourceVersion, no polling."""
    meta = current["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    if not meta.get("deletionTimestamp"):
        try:
            cluster.delete("StatefulSet", name, namespace, propagation="Orphan", uid=uid)
        except errors.Conflict:
            return  # the name holds another StatefulSet now: the old one is gone
    by_name = f"metadata.name={name}"
    for event in cluster.watch(
        "StatefulSet",
        resource_version=version,
        namespace=namespace,
        field_selector=by_name,
        timeout_seconds=wait_seconds,
    ):
        if event.type == "DELETED" and event.object["metadata"].get("uid") == uid:
            return
    items, _ = cluster.list("StatefulSet", namespace=namespace, field_selector=by_name)
    if any(item["metadata"]["uid"] == uid for item in items):
        raise errors.ClusterUnavailable(
            f"StatefulSet {name} is still being deleted after {wait_seconds} s (its pods are kept); trying again"
        )


def prune(cluster: Cluster, *, namespace: str, deployment_id: int, keep: set[tuple[str, str, str, str]]) -> list[str]:
    """Delete our objects in ``namespace`` that are not in ``keep``. Returns "Kind/name" of each deleted."""
    deleted = []
    selector = L.deployment_selector(deployment_id)
    for kind in PRUNABLE_KINDS:
        items, _ = cluster.list(kind, namespace=namespace, label_selector=selector)
        for item in items:
            if object_key(item) not in keep and cluster.delete(kind, item["metadata"]["name"], namespace):
                deleted.append(f"{kind}/{item['metadata']['name']}")
    if deleted:
        logger.info("pruned from %s: %s", namespace, ", ".join(deleted))
    return deleted


def claims_of(cluster: Cluster, *, namespace: str, deployment_id: int, service_id: str | None = None) -> list[dict]:
    selector = L.deployment_selector(deployment_id) + (f",{L.SERVICE}={service_id}" if service_id else "")
    items, _ = cluster.list("PersistentVolumeClaim", namespace=namespace, label_selector=selector)
    return items


def delete_claims(cluster: Cluster, *, namespace: str, deployment_id: int, service_id: str) -> list[str]:
    """Permanently delete the storage of one service (e.g. a removed add-on). Logged; asked for explicitly."""
    deleted = []
    for claim in claims_of(cluster, namespace=namespace, deployment_id=deployment_id, service_id=service_id):
        name = claim["metadata"]["name"]
        if cluster.delete("PersistentVolumeClaim", name, namespace):
            deleted.append(name)
    logger.warning("deleted storage of %s in %s: %s", service_id, namespace, ", ".join(deleted) or "nothing left")
    return deleted


def delete_namespace(cluster: Cluster, namespace: str) -> bool:
    """Ask the cluster to delete the namespace and everything in it, claims included. False if already gone."""
    try:
        return cluster.delete("Namespace", namespace, propagation="Foreground")
    except errors.Conflict:
        # 409 while it is already terminating: the deletion asked for earlier is under way.
        return True


def leftovers(cluster: Cluster, *, namespace: str, deployment_id: int) -> list[str]:
    """What still exists of a deleted deployment: its namespace and any of its claims, anywhere."""
    remaining = []
    ns = cluster.get("Namespace", namespace)
    if ns is not None:
        phase = (ns.get("status") or {}).get("phase", "Active")
        remaining.append(f"namespace {namespace} ({phase})")
    claims, _ = cluster.list("PersistentVolumeClaim", label_selector=L.deployment_selector(deployment_id))
    for claim in claims:
        meta = claim["metadata"]
        remaining.append(f"volume {meta['namespace']}/{meta['name']}")
    return remaining


def describe(cluster: Cluster, *, namespace: str, deployment_id: int, service_id: str) -> str:
    """The live workload and pods of one service as YAML, without server bookkeeping fields."""
    selector = f"{L.deployment_selector(deployment_id)},{L.SERVICE}={service_id}"
    documents = []
    for kind in ("StatefulSet", "Deployment", "Pod"):
        items, _ = cluster.list(kind, namespace=namespace, label_selector=selector)
        for item in items:
            item.get("metadata", {}).pop("managedFields", None)
            documents.append(item)
    if not documents:
        return f"# Nothing named {service_id} is running in {namespace}.\n"
    names = {item["metadata"]["name"] for item in documents}
    events, _ = cluster.list("Event", namespace=namespace)
    recent = sorted(
        (e for e in events if (e.get("involvedObject") or {}).get("name") in names),
        key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "",
    )[-20:]
    text = yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False)
    if recent:
        lines = [
            f"#   {e.get('lastTimestamp') or e.get('eventTime') or '':25} {e.get('type', ''):8} "
            f"{e.get('reason', ''):18} {e['involvedObject'].get('kind', '')}/{e['involvedObject'].get('name', '')}: "
            f"{e.get('message', '')}"
            for e in recent
        ]
        text += "---\n# Recent events\n" + "\n".join(lines) + "\n"
    return text
