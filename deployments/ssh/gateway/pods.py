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
    note: str  # said on stderr when there was a choice to make ("" when there was none)


def is_ready(pod: dict) -> bool:
    """Running, not being deleted, and its Ready condition true."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def choose(pods: list[dict], *, component: str, replica: str | None) -> Choice:
    """The pod to enter among ``pods`` (pure). A named replica is a pod name, its last part, or 1, 2, ...
    in name order of the ready pods; without one, the first ready pod by name."""
    ready = sorted(p["metadata"]["name"] for p in pods if is_ready(p))
    if not ready:
        starting = len(pods)
        detail = f" ({starting} starting)" if starting else ""
        raise NoPod(f"no pod of {component} is ready{detail}; try again when it is running")
    if replica:
        for index, name in enumerate(ready, start=1):
            if replica in (name, str(index)) or name.endswith(f"-{replica}"):
                return Choice(name, "")
        names = ", ".join(f"{i} ({n})" for i, n in enumerate(ready, start=1))
        raise NoPod(f"{component} has no ready replica {replica!r}; ready: {names}")
    if len(ready) == 1:
        return Choice(ready[0], "")
    return Choice(ready[0], f"{component} has {len(ready)} ready replicas; this is 1 ({ready[0]})")


def choose_for(*, namespace: str, selector: dict[str, str], component: str, replica: str | None) -> Choice:
    """List the component's pods in the cluster and choose one. Raises NoPod with the reason."""
    label_selector = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
    try:
        pods, _ = get_cluster().list("Pod", namespace=namespace, label_selector=label_selector)
    except ClusterError as error:
        raise NoPod(f"the cluster cannot be asked for {component}'s pods right now: {error}") from error
    return choose(pods, component=component, replica=replica)
