"""What Diploi does to a cluster for a deployment: apply, prune, delete, verify, describe.

Each function takes a `Cluster` and plain values (no models), is idempotent,
and raises `deployments.cluster.errors` types.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import yaml

from deployments.cluster import errors
from deployments.cluster import labels as L
from deployments.cluster.client import Cluster
from deployments.cluster.manifests import object_key
from deployments.cluster.resources import PRUNABLE_KINDS

logger = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    applied: list[tuple[str, str, str, str]] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)


def apply_objects(cluster: Cluster, objects: list[dict], *, deployment_id: int) -> ApplyResult:
    """Server-side apply every object (namespace first, one request each), then prune what is no longer desired.

    Re-applying unchanged objects changes nothing in the cluster. Claims are
    never pruned here (see `delete_claims`).
    """
    result = ApplyResult()
    for obj in objects:
        cluster.apply(obj)
        result.applied.append(object_key(obj))
    namespace = objects[0]["metadata"]["name"]
    result.pruned = prune(cluster, namespace=namespace, deployment_id=deployment_id, keep=set(result.applied))
    return result


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
