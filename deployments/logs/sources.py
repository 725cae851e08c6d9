"""Which containers a log request names: checked against the deployment's own pods in the cluster."""

from __future__ import annotations

from deployments.cluster import labels
from deployments.cluster.connection import get_cluster
from deployments.logs.streams import Position, Source

MAX_RESUME = 50  # positions a reconnect may carry (one per replica)


class BadLogRequest(ValueError):
    """The request names no container of this deployment; the message says what is wrong."""


def log_sources(deployment, *, pod: str = "", component: str = "", container: str = "") -> list[Source]:
    """The containers to read: ``pod``'s (one replica) or every pod of ``component`` (all replicas),
    ``container`` or the pod's main one (the component's own). Only pods carrying this deployment's
    labels count, so a name from another namespace or deployment is refused like a missing one.
    Asks the cluster (raises `ClusterError` when it cannot be asked); raises `BadLogRequest`."""
    if not pod and not component:
        raise BadLogRequest("say which pod or which component to read")
    pods, _ = get_cluster().list(
        "Pod", namespace=deployment.namespace, label_selector=labels.deployment_selector(deployment.pk)
    )
    pods = sorted(pods, key=lambda p: p["metadata"]["name"])
    if pod:
        pods = [p for p in pods if p["metadata"]["name"] == pod]
        if not pods:
            raise BadLogRequest(f"{deployment.name} has no pod {pod!r} (it may have been replaced: reload)")
    else:
        pods = [p for p in pods if (p["metadata"].get("labels") or {}).get(labels.SERVICE) == component]
        if not pods:
            raise BadLogRequest(f"{deployment.name} has no running pod of {component!r}")
    sources = []
    for found in pods:
        spec = found.get("spec") or {}
        names = [c["name"] for c in (spec.get("containers") or [])] + [
            c["name"] for c in (spec.get("initContainers") or [])
        ]
        service = (found["metadata"].get("labels") or {}).get(labels.SERVICE, "")
        chosen = container or (service if service in names else (names[0] if names else ""))
        if chosen not in names:
            raise BadLogRequest(f"pod {found['metadata']['name']} has no container {chosen!r}: {', '.join(names)}")
        sources.append(Source(found["metadata"]["name"], chosen))
    return sources


def parse_resume(values: list[str]) -> dict[str, Position]:
    """``pod@stamp~seen`` values (what the page sends on reconnect) as positions; BadLogRequest if malformed."""
    if len(values) > MAX_RESUME:
        raise BadLogRequest(f"at most {MAX_RESUME} resume positions")
    positions = {}
    for value in values:
        pod, _, rest = value.partition("@")
        try:
            positions[pod] = Position.parse(rest)
        except ValueError as error:
            raise BadLogRequest(f"bad resume position {value[:100]!r}: {error}") from None
    return positions
