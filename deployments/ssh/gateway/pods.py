"""Which pod a session enters: a ready one of the component, or the replica the user named."""

from __future__ import annotations

from dataclasses import dataclass

from deployments.cluster.connection import get_cluster
from deployments.cluster.errors import ClusterError


class NoPod(Exception):
    """No pod can take the session; the message says why, in words for the user."""


@dataclass(frozen=True)
class Choice:
    pod: str
    ready: tuple[str, ...]  # every ready pod, in name order (the chosen one among them)


def is_ready(pod: dict) -> bool:
    """Running, not being deleted, and its Ready condition true."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def replica_name(pod: str) -> str:
    """What names a pod as a replica: a StatefulSet's ordinal ("0") or the last part of the pod's name."""
    return pod.rsplit("-", 1)[-1]


def choose(pods: list[dict], *, component: str, replica: str | None) -> Choice:
    """The pod to enter among ``pods`` (pure): the ready one the user named (by its name or the last
    part of it, see `replica_name`), else the first ready pod by name."""
    ready = tuple(sorted(p["metadata"]["name"] for p in pods if is_ready(p)))
    if not ready:
        detail = f" ({len(pods)} starting)" if pods else ""
        raise NoPod(f"no pod of {component} is ready{detail}; try again when it is running")
    if replica is None:
        return Choice(ready[0], ready)
    for name in ready:
        if replica in (name, replica_name(name)):
            return Choice(name, ready)
    names = ", ".join(f"{replica_name(n)} ({n})" for n in ready)
    raise NoPod(f"{component} has no ready replica {replica!r}; ready: {names}")


def choose_for(*, namespace: str, selector: dict[str, str], component: str, replica: str | None) -> Choice:
    """List the component's pods in the cluster and choose one. Raises NoPod with the reason."""
    label_selector = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
    try:
        pods, _ = get_cluster().list("Pod", namespace=namespace, label_selector=label_selector)
    except ClusterError as error:
        raise NoPod(f"the cluster cannot be asked for {component}'s pods right now: {error}") from error
    return choose(pods, component=component, replica=replica)
