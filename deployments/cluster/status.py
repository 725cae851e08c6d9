"""A deployment's status, derived from the objects observed in its namespace. Pure.

`compute_status` turns what the watcher saw (pods, claims, workloads, the
ingress and certificates) plus what the template expects into a tree of four
nodes (Storage, Builds, Containers, Services), each with a colour, a one-line
reason a person understands and the time it has been so, and an overall health:

- green: everything works;
- yellow: an issue, but the deployment runs (a container restarting, a rollout
  or start past the grace period, storage pending, a non-public service down);
- red: a bigger issue (no ready pod behind a public endpoint, the app crash
  looping, storage lost, the namespace missing);
- unknown: the cluster has not been seen for a while (`stale_status`).

A grace period keeps a deployment that is starting from flashing red.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from deployments.cluster import labels as L

GREEN, YELLOW, RED, UNKNOWN = "green", "yellow", "red", "unknown"
_RANK = {GREEN: 0, UNKNOWN: 1, YELLOW: 2, RED: 3}
NODES = ("storage", "builds", "containers", "services")
NODE_TITLES = {"storage": "Storage", "builds": "Builds", "containers": "Containers", "services": "Services"}
_IMAGE_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_CONFIG_ERRORS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


@dataclass(frozen=True)
class ExpectedService:
    id: str
    name: str
    kind: str  # "component" or "addon"
    port: int
    public_hosts: tuple[str, ...] = ()
    awaiting_build: bool = False  # built from the repository, and no build of it succeeded yet

    @property
    def public(self) -> bool:
        return bool(self.public_hosts)


@dataclass(frozen=True)
class Expectation:
    """What the deployment should look like, from its template and desired state."""

    namespace: str
    services: tuple[ExpectedService, ...]
    enabled: bool = True
    applied: bool = True  # False until the first apply finished: nothing is expected in the cluster yet
    custom_domains: tuple[str, ...] = ()


@dataclass
class Observation:
    """The deployment's objects as last seen in the cluster."""

    namespace: dict | None = None
    pods: list[dict] = field(default_factory=list)
    claims: list[dict] = field(default_factory=list)
    workloads: list[dict] = field(default_factory=list)  # StatefulSets and Deployments
    ingresses: list[dict] = field(default_factory=list)
    certificates: list[dict] = field(default_factory=list)
    jobs: list[dict] = field(default_factory=list)


def worst(colours: Iterable[str]) -> str:
    return max(colours, key=_RANK.__getitem__, default=GREEN)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _age(obj: Mapping, now: datetime) -> timedelta:
    created = _time(obj.get("metadata", {}).get("creationTimestamp"))
    return now - created if created else timedelta(0)


def _labels(obj: Mapping) -> Mapping[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def _item(key: str, health: str, reason: str, **details) -> dict:
    return {"key": key, "health": health, "reason": reason, **details}


# ----------------------------------------------------------------------------- storage


def _storage_items(observed: Observation, now: datetime, grace: timedelta) -> list[dict]:
    items = []
    for claim in sorted(observed.claims, key=lambda c: c["metadata"]["name"]):
        meta = claim["metadata"]
        phase = (claim.get("status") or {}).get("phase", "Pending")
        size = (claim.get("status") or {}).get("capacity", {}).get("storage") or claim["spec"]["resources"]["requests"][
            "storage"
        ]
        service = _labels(claim).get(L.SERVICE, "")
        label = f"{meta['name']} ({size})"
        if meta.get("deletionTimestamp"):
            health, reason = YELLOW, f"{label} is being deleted"
        elif phase == "Bound":
            health, reason = GREEN, f"{label} bound"
        elif phase == "Lost":
            health, reason = RED, f"{label} lost its volume"
        elif phase == "Pending" and _age(claim, now) > grace:
            health, reason = YELLOW, f"{label} still waiting for a volume"
        else:
            health, reason = YELLOW, f"{label} waiting for a volume"
        items.append(_item(meta["name"], health, reason, service=service, size=size, phase=phase))
    return items


# ----------------------------------------------------------------------------- containers


def _container_summary(status: Mapping) -> tuple[str, str, int, str]:
    """(state, waiting/terminated reason, restarts, last termination) of one container status."""
    state = status.get("state") or {}
    restarts = status.get("restartCount", 0)
    last = (status.get("lastState") or {}).get("terminated") or {}
    last_text = ""
    if last:
        last_text = f"last exit {last.get('exitCode', '?')}" + (f" ({last['reason']})" if last.get("reason") else "")
    if "running" in state:
        return "running", "", restarts, last_text
    if "waiting" in state:
        return "waiting", state["waiting"].get("reason", "Waiting"), restarts, last_text
    if "terminated" in state:
        term = state["terminated"]
        return "terminated", term.get("reason") or f"exit {term.get('exitCode')}", restarts, last_text
    return "waiting", "ContainerCreating", restarts, last_text


def _pod_ready(pod: Mapping) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _pod_item(pod: dict, service: ExpectedService | None, now: datetime, grace: timedelta) -> dict:
    meta = pod["metadata"]
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    ready = _pod_ready(pod)
    young = _age(pod, now) <= grace
    is_app = service is None or service.kind == "component"
    containers = []
    problems: list[tuple[str, str]] = []
    for kind, statuses in (
        ("init", status.get("initContainerStatuses") or []),
        ("main", status.get("containerStatuses") or []),
    ):
        for cs in statuses:
            state, why, restarts, last = _container_summary(cs)
            if kind == "init" and state == "terminated" and why in ("Completed", "exit 0"):
                continue
            containers.append(
                {
                    "name": cs["name"],
                    "init": kind == "init",
                    "state": state,
                    "detail": why,
                    "ready": cs.get("ready", False),
                    "restarts": restarts,
                    "last_termination": last,
                }
            )
            detail = ", ".join(
                part for part in (f"{restarts} restart{'s' if restarts != 1 else ''}" if restarts else "", last) if part
            )
            text = f"{cs['name']}: {why}" + (f", {detail}" if detail else "")
            if why == "CrashLoopBackOff":
                problems.append((YELLOW if young or not is_app else RED, text))
            elif why in _IMAGE_ERRORS or why in _CONFIG_ERRORS:
                problems.append((YELLOW if young else RED, text))
            elif restarts and last and not cs.get("ready", False):
                # Between two crashes: running again, not ready yet.
                text = f"{cs['name']}: restarting after a crash, {detail}"
                problems.append((YELLOW if young or not is_app else RED, text))
    if meta.get("deletionTimestamp"):
        health, reason = GREEN, f"{meta['name']}: stopping"
    elif problems:
        health, reason = max(problems, key=lambda p: _RANK[p[0]])
    elif phase == "Failed":
        health, reason = RED, f"{meta['name']}: failed ({status.get('reason') or 'see its events'})"
    elif phase == "Succeeded":
        health, reason = GREEN, f"{meta['name']}: completed"
    elif ready:
        health, reason = GREEN, f"{meta['name']}: running"
    else:
        waiting = next((c for c in containers if not c["ready"]), None)
        step = waiting["detail"] if waiting and waiting["detail"] else phase
        if waiting and waiting["init"]:
            step = f"init container {waiting['name']}: {step}"
        health = YELLOW
        reason = f"{meta['name']}: {'starting' if young else 'not ready'} ({step})"
    total_restarts = sum(c["restarts"] for c in containers)
    return _item(
        meta["name"],
        health,
        reason,
        service=_labels(pod).get(L.SERVICE, ""),
        phase=phase,
        ready=ready,
        restarts=total_restarts,
        containers=containers,
    )


# ----------------------------------------------------------------------------- services


def _desired_replicas(workload: Mapping) -> int:
    return (workload.get("spec") or {}).get("replicas", 1)


def _rolling(workload: Mapping) -> bool:
    spec_generation = workload.get("metadata", {}).get("generation", 0)
    status = workload.get("status") or {}
    desired = _desired_replicas(workload)
    if status.get("observedGeneration", 0) < spec_generation:
        return True
    if workload.get("kind") == "StatefulSet":
        return status.get("currentRevision") != status.get("updateRevision") and desired > 0
    return status.get("updatedReplicas", 0) < desired


def _service_items(
    expect: Expectation,
    observed: Observation,
    pod_items: list[dict],
    now: datetime,
    grace: timedelta,
) -> list[dict]:
    workloads = {_labels(w).get(L.SERVICE): w for w in observed.workloads}
    items = []
    for service in expect.services:
        endpoint = f"https://{service.public_hosts[0]}" if service.public else f"{service.id}:{service.port} (internal)"
        workload = workloads.get(service.id)
        pods = [p for p in pod_items if p["service"] == service.id]
        ready = sum(1 for p in pods if p["ready"])
        details = {
            "name": service.name,
            "kind": service.kind,
            "public": service.public,
            "endpoint": endpoint,
            "hosts": list(service.public_hosts),
        }
        if workload is None and service.awaiting_build:
            items.append(
                _item(service.id, YELLOW, f"{service.name}: waiting for the first build", ready="0", **details)
            )
            continue
        if workload is None:
            young = not expect.applied
            health = YELLOW if young else (RED if service.public or service.kind == "component" else YELLOW)
            reason = f"{service.name}: {'being created' if young else 'missing from the cluster'}"
            items.append(_item(service.id, health, reason, ready="0", **details))
            continue
        desired = _desired_replicas(workload)
        young = _age(workload, now) <= grace or any(_age_of(p, observed, now) <= grace for p in pods)
        worst_pod = max(pods, key=lambda p: _RANK[p["health"]], default=None)
        if desired == 0:
            health, reason = GREEN, f"{service.name}: scaled to zero"
        elif ready >= desired and not _rolling(workload):
            health, reason = GREEN, f"{service.name}: {ready}/{desired} ready"
        elif ready == 0:
            if worst_pod and worst_pod["health"] == RED:
                health, reason = RED, worst_pod["reason"]
            elif young:
                health = YELLOW
                reason = worst_pod["reason"] if worst_pod else f"{service.name}: starting"
            else:
                # Nothing serves: red behind a public endpoint, yellow for internal services.
                health = RED if service.public else YELLOW
                reason = worst_pod["reason"] if worst_pod else f"{service.name}: no pod running"
                if service.public and not reason.startswith(service.name):
                    reason = f"{service.name} down: {reason}"
        else:
            # Some pods serve: an issue, but still running.
            health = YELLOW if not young else GREEN
            reason = (
                f"{service.name}: {ready}/{desired} ready, rolling out"
                if _rolling(workload)
                else f"{service.name}: {ready}/{desired} ready"
            )
            if worst_pod and worst_pod["health"] != GREEN:
                health = YELLOW
                reason = worst_pod["reason"]
        items.append(_item(service.id, health, reason, ready=f"{ready}/{desired}", **details))
    return items


def _age_of(pod_item: dict, observed: Observation, now: datetime) -> timedelta:
    for pod in observed.pods:
        if pod["metadata"]["name"] == pod_item["key"]:
            return _age(pod, now)
    return timedelta(0)


# ----------------------------------------------------------------------------- certificates


def certificate_states(observed: Observation) -> dict[str, str]:
    """TLS state by host: "issued", "pending" or "failed: <why>"."""
    states = {}
    for cert in observed.certificates:
        conditions = (cert.get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        if ready and ready.get("status") == "True":
            state = "issued"
        elif (
            ready
            and ready.get("status") == "False"
            and ready.get("reason") not in (None, "", "Issuing", "DoesNotExist")
        ):
            state = f"failed: {ready.get('message') or ready.get('reason')}"
        else:
            state = "pending"
        for host in (cert.get("spec") or {}).get("dnsNames") or []:
            states[host] = state
    return states


# ----------------------------------------------------------------------------- the tree


def _node(items: list[dict], empty_reason: str, ok_reason: str) -> dict:
    if not items:
        return {"health": GREEN, "reason": empty_reason, "items": []}
    health = worst(item["health"] for item in items)
    if health == GREEN:
        return {"health": GREEN, "reason": ok_reason, "items": items}
    problem = next(item for item in items if item["health"] == health)
    others = sum(1 for item in items if item["health"] != GREEN) - 1
    reason = problem["reason"] + (f" (and {others} more)" if others > 0 else "")
    return {"health": health, "reason": reason, "items": items}


def compute_status(
    expect: Expectation,
    observed: Observation,
    *,
    now: datetime,
    grace: timedelta,
    previous: Mapping | None = None,
) -> dict:
    """The status tree of one deployment. ``previous`` (the last tree) carries "since" forward."""
    pods = [_pod_item(pod, _service(expect, pod), now, grace) for pod in sorted(observed.pods, key=_pod_order)]
    storage = _storage_items(observed, now, grace)
    services = _service_items(expect, observed, pods, now, grace)
    nodes = {
        "storage": _node(storage, "No storage", f"{len(storage)} volume{'s' if len(storage) != 1 else ''} bound"),
        "builds": _node([], "No builds: the template's images run as they are", ""),
        "containers": _node(pods, "No containers running", f"{len(pods)} pod{'s' if len(pods) != 1 else ''} running"),
        "services": _node(services, "No services", "All services ready"),
    }
    health, reason = _overall(expect, observed, nodes)
    tree = {"health": health, "reason": reason, "nodes": nodes, "tls": certificate_states(observed)}
    return carry_since(tree, previous, now)


def _service(expect: Expectation, pod: Mapping) -> ExpectedService | None:
    service_id = _labels(pod).get(L.SERVICE)
    return next((s for s in expect.services if s.id == service_id), None)


def _pod_order(pod: Mapping) -> tuple[str, str]:
    return _labels(pod).get(L.SERVICE, ""), pod["metadata"]["name"]


def _overall(expect: Expectation, observed: Observation, nodes: Mapping[str, dict]) -> tuple[str, str]:
    if not expect.applied and observed.namespace is None:
        return YELLOW, "Creating: applying the deployment to the cluster"
    if observed.namespace is None:
        return RED, f"The namespace {expect.namespace} is missing from the cluster"
    if (observed.namespace.get("status") or {}).get("phase") == "Terminating":
        return YELLOW, f"The namespace {expect.namespace} is being deleted"
    if not expect.enabled:
        return GREEN, "Disabled: scaled to zero"
    order = ("services", "storage", "containers", "builds")
    health = worst(nodes[name]["health"] for name in order)
    if health == GREEN:
        return GREEN, "All services ready"
    # The first node with the worst colour explains it; services speak most plainly.
    node = next(nodes[name] for name in order if nodes[name]["health"] == health)
    return health, node["reason"]


def carry_since(tree: dict, previous: Mapping | None, now: datetime) -> dict:
    """Give every node and item a "since": kept from ``previous`` while its colour stays the same."""
    stamp = now.isoformat()

    # "Since" follows the colour: a crash loop's reason changes with every
    # restart count, but it has been red since the first crash.
    def same(old: Mapping | None, new: Mapping) -> bool:
        return bool(old) and old.get("health") == new["health"]

    previous = previous or {}
    tree["since"] = previous.get("since", stamp) if same(previous, tree) else stamp
    old_nodes = previous.get("nodes") or {}
    for name, node in tree["nodes"].items():
        old_node = old_nodes.get(name) or {}
        node["since"] = old_node.get("since", stamp) if same(old_node, node) else stamp
        old_items = {item["key"]: item for item in old_node.get("items") or []}
        for item in node["items"]:
            old_item = old_items.get(item["key"])
            item["since"] = old_item.get("since", stamp) if same(old_item, item) else stamp
    return tree


def stale_status(previous: Mapping | None, *, since: datetime, error: str, now: datetime) -> dict:
    """The tree to show while the cluster cannot be reached: unknown, saying since when and why."""
    tree = {k: v for k, v in (previous or {}).items() if k in ("nodes", "tls")}
    tree.setdefault("nodes", {name: {"health": UNKNOWN, "reason": "Not observed yet", "items": []} for name in NODES})
    tree["health"] = UNKNOWN
    moment = f"{since:%H:%M:%S}" if since.date() == now.date() else f"{since:%Y-%m-%d %H:%M}"
    tree["reason"] = f"Unknown since {moment} UTC: {error}"
    was_stale = (previous or {}).get("health") == UNKNOWN
    tree["since"] = (previous or {}).get("since") if was_stale else None
    tree["since"] = tree["since"] or now.isoformat()
    tree["stale_since"] = since.isoformat()
    return tree
