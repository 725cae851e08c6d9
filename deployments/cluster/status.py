"""A deployment's status, derived from the objects observed in its namespace. Pure.

`compute_status` turns what the watcher saw (pods, claims, workloads, the
ingress and certificates) plus what Diploi wants (the template, the desired
state, the operation under way) into a tree of four nodes (Storage, Builds,
Containers, Services), each with a colour, a one-line reason a person
understands and the time it has been so, and an overall health. The state
table in docs/architecture.md is the contract; in short:

- green: everything Diploi wants runs, rolled out;
- progress: one of our own operations (creating, applying a change,
  restarting, enabling, disabling, deleting) is under way and the cluster
  reports nothing wrong; it says what it waits for and, past the grace
  period, turns yellow ("... longer than expected");
- disabled (grey): disabled, and nothing runs any more;
- yellow: an issue, but the deployment runs (a fault on a pod that is still
  young, an internal add-on down, some pods not serving, storage pending, a
  workload changed by hand);
- red: the cluster says something is wrong and nothing serves: a crash loop,
  an image that cannot be pulled, a pod that cannot be scheduled, storage
  lost, no ready pod behind a public endpoint with no operation under way;
- unknown: the cluster has not been seen for a while (`stale_status`).

What the app says of itself (its template's status URL, read by `appstatus.poller` into
`Observation.app_status`) joins the Services node as items of their own (`APP_STATUS_KIND`):
yellow, red and pending ones count like any item, an app that does not answer only past its
grace period and never as red.

Desired replicas and images come from the expectation, not from the observed
workloads; a rollout is in progress as `kubectl rollout status` decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from deployments.cluster import labels as L

GREEN, YELLOW, RED, UNKNOWN = "green", "yellow", "red", "unknown"
PROGRESS, DISABLED = "progress", "disabled"
_RANK = {GREEN: 0, DISABLED: 1, PROGRESS: 2, UNKNOWN: 3, YELLOW: 4, RED: 5}
NODES = ("storage", "builds", "containers", "services")
NODE_TITLES = {"storage": "Storage", "builds": "Builds", "containers": "Containers", "services": "Services"}
_IMAGE_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_CONFIG_ERRORS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}

CLONE_CONTAINER = "clone"  # the init container that clones the code in development (manifests)

# What an operation under way is doing, as the status says it.
CREATE, CHANGE, RESTART, ENABLE, DISABLE, DELETE = "create", "change", "restart", "enable", "disable", "delete"


@dataclass(frozen=True)
class ExpectedService:
    id: str
    name: str
    kind: str  # "component" or "addon"
    port: int
    public_hosts: tuple[str, ...] = ()
    awaiting_build: bool = False  # built from the repository, and no build of it succeeded yet
    replicas: int = 1  # while enabled, from the template and the stage
    image: str = ""  # the image Diploi runs (the template's or an override); "" = not compared

    @property
    def public(self) -> bool:
        return bool(self.public_hosts)


@dataclass(frozen=True)
class Intent:
    """One of our own operations under way: what the status shows as progress."""

    kind: str  # CREATE, CHANGE, RESTART, ENABLE, DISABLE or DELETE
    started: datetime
    target: str = ""  # a service id; "" for the whole deployment
    actor: str = ""
    summary: str = ""  # e.g. "environment variables changed"

    def covers(self, service_id: str) -> bool:
        return self.target in ("", service_id)


@dataclass(frozen=True)
class Expectation:
    """What the deployment should look like, from its template and desired state."""

    namespace: str
    services: tuple[ExpectedService, ...]
    enabled: bool = True
    applied: bool = True  # False until the first apply finished: nothing is expected in the cluster yet
    up_to_date: bool = True  # False while a newer desired state (a rollout, say) waits to be applied
    custom_domains: tuple[str, ...] = ()
    generation: int = 0  # the desired generation: workloads rendered from it carry it (GENERATION_ANNOTATION)
    deleting: bool = False
    intent: Intent | None = None
    # The size's name and what it asks for, for reasons a person can act on ("the Large size needs 4 GiB").
    size: str = ""
    size_cpu: str = ""
    size_memory: str = ""
    memory_limit: str = ""
    status_service: str = ""  # the component the template's status_url names ("" when it has none)


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
    services: list[dict] = field(default_factory=list)  # Kubernetes Services
    endpoint_slices: list[dict] = field(default_factory=list)  # discovery.k8s.io/v1, by the cluster's controller
    events: list[dict] = field(default_factory=list)  # the kubelet's probe failures of our pods (Unhealthy)
    # The kinds the observer lists and watches: what is missing is only missing when it was looked for.
    watched: frozenset[str] = frozenset()
    tls_managed: bool = True  # False: the cluster has no certificate API (no cert-manager)
    # What the app's status URL last answered (`appstatus`): {"items", "error", "failing_since"}; None:
    # not asked yet.
    app_status: Mapping | None = None


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


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _ago(moment: datetime, now: datetime) -> str:
    """Coarse on purpose: the reason is stored, and changes only every ten seconds."""
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 10:
        return "just now"
    if seconds < 60:
        return f"{seconds // 10 * 10} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _late(intent: Intent | None, now: datetime, grace: timedelta) -> bool:
    return intent is not None and now - intent.started > grace


def intent_words(intent: Intent, expect: Expectation, now: datetime) -> str:
    """ "Restarting Django, asked by ana 20 s ago" """
    names = {s.id: s.name for s in expect.services}
    target = names.get(intent.target, intent.target)
    summary = intent.summary if len(intent.summary) <= 60 else intent.summary[:57] + "…"
    verb = {
        CREATE: "Creating",
        CHANGE: f"Applying changes ({summary})" if summary else "Applying changes",
        RESTART: f"Restarting {target or 'all services'}",
        ENABLE: "Enabling",
        DISABLE: "Disabling",
        DELETE: "Deleting",
    }.get(intent.kind, "Working")
    who = f", asked by {intent.actor}" if intent.actor else ", asked"
    return f"{verb}{who} {_ago(intent.started, now)}"


# ----------------------------------------------------------------------------- storage


def _storage_items(expect: Expectation, observed: Observation, now: datetime, grace: timedelta) -> list[dict]:
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
            # Released by its pod first, then deleted: progress of a delete, an issue otherwise.
            health = PROGRESS if expect.deleting or expect.intent else YELLOW
            health, reason = health, f"{label} is being deleted"
        elif phase == "Bound":
            health, reason = GREEN, f"{label} bound"
        elif phase == "Lost":
            health, reason = RED, f"{label} lost its volume"
        elif phase == "Pending" and _age(claim, now) > grace:
            health, reason = YELLOW, f"{label} still waiting for a volume"
        else:
            health, reason = PROGRESS, f"{label} waiting for a volume"
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


def _condition(obj: Mapping, kind: str) -> Mapping | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return None


def _pod_ready(pod: Mapping) -> bool:
    condition = _condition(pod, "Ready")
    return bool(condition) and condition.get("status") == "True"


def _unschedulable(pod: Mapping) -> str:
    condition = _condition(pod, "PodScheduled")
    if condition and condition.get("status") == "False" and condition.get("reason") == "Unschedulable":
        return condition.get("message") or "no node can run it"
    return ""


# The scheduler's words for a pod whose claims are not bound yet (or not created yet, by its
# StatefulSet): every new pod with a volume says so for a moment while the volume is provisioned.
_CLAIM_WAITS = ("unbound immediate PersistentVolumeClaims", 'persistentvolumeclaim "')


def _waits_for_claim(message: str) -> bool:
    return any(words in message for words in _CLAIM_WAITS)


_NODES_AVAILABLE = re.compile(r"(\d+)/(\d+) nodes are available")
_INSUFFICIENT = re.compile(r"Insufficient (cpu|memory)")
_DENIED = ("denied", "unauthorized", "authorization failed", "forbidden", "401", "403")
_NOT_FOUND = ("not found", "manifest unknown", "does not exist", "no such host")


def _scheduling_words(message: str, expect: Expectation) -> str:
    """The scheduler's refusal, with what the size asks for and what to do."""
    short = message.split(" preemption:")[0].strip()
    insufficient = _INSUFFICIENT.search(message)
    nodes = _NODES_AVAILABLE.search(message)
    if insufficient and nodes:
        resource = "CPU" if insufficient.group(1) == "cpu" else "memory"
        need = expect.size_cpu if resource == "CPU" else expect.size_memory
        size = f"the {expect.size} size needs {need}" if expect.size and need else "its size asks for more"
        return (
            f"FailedScheduling: {nodes.group(1)}/{nodes.group(2)} nodes have enough {resource}: {size}; "
            "pick a smaller size or ask your operator"
        )
    return f"FailedScheduling: {short}"


def _pull_words(c: Mapping) -> str:
    message = (c.get("message") or "").lower()
    image = c.get("image") or "its image"
    # A kubelet alternates ErrImagePull and ImagePullBackOff: one word for both, so the reason holds still.
    reason = "ImagePullBackOff" if c["detail"] in ("ErrImagePull", "ImagePullBackOff") else c["detail"]
    if any(word in message for word in _NOT_FOUND) and not any(word in message for word in _DENIED):
        return f"{reason}: the image {image} was not found: check its name and tag"
    return f"{reason}: the image registry refused the pull of {image}: check REGISTRY credentials"


OOM_WINDOW = timedelta(minutes=10)  # OOM kills are counted over this window
# The kubelet resets a container's crash back-off once it has run this long: no longer a crash loop.
CRASH_LOOP_RESET = timedelta(minutes=10)


def oom_kills(container: Mapping, seen: Iterable[str], now: datetime) -> list[str]:
    """When the container was OOM-killed within OOM_WINDOW: ``seen`` (what earlier trees recorded of
    it) and its last termination, if the kernel's OOM killer ended it. A pod's status holds only the
    last termination, so the count is kept from tree to tree. Oldest first."""
    last = (container.get("lastState") or {}).get("terminated") or {}
    moments = set(seen)
    if last.get("reason") == "OOMKilled" and last.get("finishedAt"):
        moments.add(last["finishedAt"])
    return sorted(m for m in moments if (at := _time(m)) is not None and now - at <= OOM_WINDOW)


def _oom_words(c: Mapping, expect: Expectation) -> str:
    limit = f"its {expect.memory_limit} limit" if expect.memory_limit else "its memory limit"
    if c["oom_known"]:
        count = f"{_plural(len(c['oom_kills']), 'time')} in {int(OOM_WINDOW.total_seconds() // 60)} min"
    else:  # first seen now: of its restarts, only the last is known to be an OOM kill
        count = f"(last of {_plural(c['restarts'], 'restart')})"
    return f"{c['name']}: OOMKilled: used more than {limit} {count}; pick a larger size"


LIVENESS_FAILED = "Liveness probe failed"


def _probe_port(pod: Mapping, container: str, probe: str) -> int | str | None:
    """The port a container's probe checks (a named one resolved against its ports), if it has one."""
    for spec in (pod.get("spec") or {}).get("containers") or ():
        if spec.get("name") != container:
            continue
        action = (spec.get(probe) or {}).get("httpGet") or (spec.get(probe) or {}).get("tcpSocket") or {}
        port = action.get("port")
        for declared in spec.get("ports") or ():
            if isinstance(port, str) and declared.get("name") == port:
                return declared.get("containerPort")
        return port
    return None


def _liveness_words(pod: Mapping, c: Mapping, events: Iterable[Mapping]) -> str:
    """ "app: Liveness probe failed on :8000 for 60 s (HTTP probe failed with statuscode: 500), killed
    2 times" when the kubelet said so (its Unhealthy events); "" otherwise."""
    field_path = f"spec.containers{{{c['name']}}}"
    # Events live for an hour: only failures during the run that ended last explain its end.
    run_started = _time(c.get("last_started"))
    failed = [
        e
        for e in events
        if e.get("reason") == "Unhealthy"
        and str(e.get("message", "")).startswith(LIVENESS_FAILED)
        and (e.get("involvedObject") or {}).get("fieldPath", field_path) == field_path
        and (
            run_started is None
            or ((last := _time(e.get("lastTimestamp") or e.get("eventTime"))) is not None and last >= run_started)
        )
    ]
    if not failed:
        return ""
    message = str(failed[-1]["message"])[len(LIVENESS_FAILED) :].lstrip(": ").strip()
    port = _probe_port(pod, c["name"], "livenessProbe")
    where = f" on :{port}" if port else ""
    probe = next(
        (
            s.get("livenessProbe") or {}
            for s in (pod.get("spec") or {}).get("containers") or ()
            if s.get("name") == c["name"]
        ),
        {},
    )
    # What the kubelet waited for before each kill: failureThreshold probes, periodSeconds apart.
    seconds = int(probe.get("periodSeconds") or 10) * int(probe.get("failureThreshold") or 3)
    detail = f" ({message})" if message else ""
    kills = f", killed {_plural(c['restarts'], 'time')}" if c["restarts"] else ""
    return f"{c['name']}: Liveness probe failed{where} for {seconds} s{detail}{kills}"


READINESS_FAILED = "Readiness probe failed"


def _seconds(seconds: float) -> str:
    """A duration in a reason: coarse (10 s steps, then minutes), so the stored reason holds still."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds // 10 * 10} s" if seconds >= 10 else f"{seconds} s"
    return f"{seconds // 60} min"


def _readiness_failure(pod: Mapping, c: Mapping, events: Iterable[Mapping], now: datetime) -> tuple[str, float]:
    """("app: Readiness probe failed on :8000 for 90 s (HTTP probe failed with statuscode: 503)", how
    many seconds it has failed) for a running, unready container the kubelet reported failing its
    readiness probe since the pod last turned unready; ("", 0) otherwise. Events live for an hour:
    those from before the pod's last Ready transition (a start long ago) say nothing of now."""
    if c["init"] or c["state"] != "running" or c["ready"]:
        return "", 0.0
    field_path = f"spec.containers{{{c['name']}}}"
    unready_since = _time((_condition(pod, "Ready") or {}).get("lastTransitionTime"))
    failed = [
        e
        for e in events
        if e.get("reason") == "Unhealthy"
        and str(e.get("message", "")).startswith(READINESS_FAILED)
        and (e.get("involvedObject") or {}).get("fieldPath", field_path) == field_path
        and (
            unready_since is None
            or ((last := _time(e.get("lastTimestamp") or e.get("eventTime"))) is not None and last >= unready_since)
        )
    ]
    if not failed:
        return "", 0.0
    # Not ready since the condition turned False (the kubelet's failures started a few periods before).
    since = unready_since or _time(failed[0].get("firstTimestamp") or failed[0].get("eventTime"))
    seconds = (now - since).total_seconds() if since else 0.0
    message = str(failed[-1]["message"])[len(READINESS_FAILED) :].lstrip(": ").strip()
    port = _probe_port(pod, c["name"], "readinessProbe")
    where = f" on :{port}" if port else ""
    detail = f" ({message})" if message else ""
    return f"{c['name']}: Readiness probe failed{where} for {_seconds(seconds)}{detail}", seconds


def _pod_faults(
    pod: Mapping,
    containers: list[dict],
    expect: Expectation,
    events: Iterable[Mapping] = (),
    *,
    now: datetime | None = None,
    grace: timedelta | None = None,
    young: bool = False,
) -> list[str]:
    """What the cluster says is wrong with a pod, in words a person can act on: empty when nothing is.
    ``events``: the pod's Unhealthy events (probe failures only events tell); a readiness probe failing
    for longer than ``grace`` is a fault (before that, the pod is only not ready yet). A ``young``
    pod waiting for its volume to be bound is not one either (a claim that cannot bind is, later)."""
    events = list(events)
    faults = []
    unschedulable = _unschedulable(pod)
    if unschedulable and not (young and _waits_for_claim(unschedulable)):
        faults.append(_scheduling_words(unschedulable, expect))
    for c in containers:
        detail = ", ".join(
            part for part in (_plural(c["restarts"], "restart") if c["restarts"] else "", c["last_termination"]) if part
        )
        prefix = f"init container {c['name']}" if c["init"] else c["name"]
        suffix = f", {detail}" if detail else ""
        # Running again after a crash, not ready yet: between two crashes of a loop, unless it has run
        # longer than the kubelet takes to forget a crash loop (then its readiness says why, not a
        # crash long ago).
        running_since = _time(c.get("running_since"))
        settled_run = (
            c["state"] == "running"
            and running_since is not None
            and now is not None
            and now - running_since > CRASH_LOOP_RESET
        )
        failing = (
            c["detail"] == "CrashLoopBackOff"
            or (c["restarts"] and c["last_termination"] and not c["ready"] and not settled_run)
            or (c["init"] and c["state"] == "terminated" and c["detail"] not in ("Completed", "exit 0"))
        )
        if c["detail"] in _IMAGE_ERRORS:
            faults.append(f"{c['name']}: {_pull_words(c)}")
        elif c["init"] and c["name"] == CLONE_CONTAINER and failing:
            faults.append(
                f"Init: git clone failed: repository not found or no access ({_plural(c['restarts'], 'attempt')}); "
                "check the project's repository, the branch and its credentials"
            )
        elif failing and c["last_reason"] == "OOMKilled":
            faults.append(_oom_words(c, expect))
        elif failing and not c["init"] and (liveness := _liveness_words(pod, c, events)):
            faults.append(liveness)
        elif c["detail"] == "CrashLoopBackOff" or c["detail"] in _CONFIG_ERRORS:
            faults.append(f"{prefix}: {c['detail']}{suffix}")
        elif failing and c["restarts"]:
            # Between two crashes (running again, not ready): the same crash loop, in the same words.
            faults.append(f"{prefix}: CrashLoopBackOff, {detail}")
        elif failing:
            faults.append(f"{prefix}: {c['detail']}")
        elif now is not None and grace is not None:
            words, seconds = _readiness_failure(pod, c, events, now)
            if words and seconds > grace.total_seconds():
                faults.append(words)
    return faults


def _readiness_words(
    pod: Mapping, service: ExpectedService | None, now: datetime, containers: list[dict], events: list[Mapping]
) -> str:
    """Why a running pod is not ready: the kubelet's readiness failure when it reported one."""
    for c in containers:
        words, _ = _readiness_failure(pod, c, events, now)
        if words:
            return words
    condition = _condition(pod, "Ready") or {}
    since = _time(condition.get("lastTransitionTime"))
    port = f" on :{service.port}" if service else ""
    for_how_long = f" for {_seconds((now - since).total_seconds())}" if since else ""
    return f"running, readiness check{port} failing{for_how_long}"


_UNSTORED = ("oom_kills", "oom_known", "running_since", "last_started")  # a container's keys kept out of the tree


def _pod_item(
    pod: dict,
    service: ExpectedService | None,
    expect: Expectation,
    now: datetime,
    grace: timedelta,
    previous: Mapping | None = None,
    events: Iterable[Mapping] = (),
) -> dict:
    """One pod as a Containers item; ``previous``: its item in the last tree (what it remembers);
    ``events``: its Unhealthy events."""
    meta = pod["metadata"]
    remembered = (previous or {}).get("oom_kills") or {}
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    ready = _pod_ready(pod)
    young = _age(pod, now) <= grace
    is_app = service is None or service.kind == "component"
    containers = []
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
                    "last_reason": ((cs.get("lastState") or {}).get("terminated") or {}).get("reason", ""),
                    "message": ((cs.get("state") or {}).get("waiting") or {}).get("message", ""),
                    "image": cs.get("image", ""),
                    "oom_kills": oom_kills(cs, remembered.get(cs["name"], ()), now),
                    "oom_known": previous is not None,
                    # When it started running now, and when the run that ended last had started.
                    "running_since": ((cs.get("state") or {}).get("running") or {}).get("startedAt") or "",
                    "last_started": ((cs.get("lastState") or {}).get("terminated") or {}).get("startedAt") or "",
                }
            )
    events = list(events)
    faults = _pod_faults(pod, containers, expect, events, now=now, grace=grace, young=young)
    stopping = bool(meta.get("deletionTimestamp"))
    if stopping:
        # Ours to stop (a rollout, a restart, a disable, a delete): progress, never an alarm.
        health, reason = PROGRESS, f"{meta['name']}: stopping"
    elif faults:
        health = YELLOW if young or not is_app else RED
        # A fault that names its container ("app: CrashLoopBackOff") needs no pod name as well.
        named = any(not c["init"] and faults[0].startswith(f"{c['name']}:") for c in containers)
        reason = faults[0] if named else f"{meta['name']}: {faults[0]}"
    elif phase == "Failed":
        health, reason = RED, f"{meta['name']}: failed ({status.get('reason') or 'see its events'})"
    elif phase == "Succeeded":
        health, reason = GREEN, f"{meta['name']}: completed"
    elif ready:
        health, reason = GREEN, f"{meta['name']}: running"
    else:
        waiting = next((c for c in containers if not c["ready"]), None)
        step = waiting["detail"] if waiting and waiting["detail"] else phase
        if _waits_for_claim(_unschedulable(pod)):
            step = "waiting for its volume"
        elif waiting and waiting["init"]:
            step = f"init container {waiting['name']}: {step}"
        elif waiting and waiting["state"] == "running":
            step = (
                "running, readiness check not passing yet"
                if young
                else _readiness_words(pod, service, now, containers, events)
            )
        health = PROGRESS if young else YELLOW
        reason = f"{meta['name']}: {'starting' if young else 'not ready'} ({step})"
    return _item(
        meta["name"],
        health,
        reason,
        service=_labels(pod).get(L.SERVICE, ""),
        phase=phase,
        ready=ready and not stopping,
        stopping=stopping,
        fault=bool(faults),
        revision=_labels(pod).get("controller-revision-hash", ""),
        restarts=sum(c["restarts"] for c in containers),
        containers=[{k: v for k, v in c.items() if k not in _UNSTORED} for c in containers],
        oom_kills={c["name"]: c["oom_kills"] for c in containers if c["oom_kills"]},
    )


# ----------------------------------------------------------------------------- services


def _generation(workload: Mapping) -> int:
    value = (workload.get("metadata", {}).get("annotations") or {}).get(L.GENERATION_ANNOTATION, "0")
    return int(value) if str(value).isdigit() else 0


def _rollout(workload: Mapping, pods: list[dict]) -> tuple[bool, str, int]:
    """(done, what it waits for, pods already replaced), as `kubectl rollout status` decides."""
    meta = workload.get("metadata") or {}
    status = workload.get("status") or {}
    replicas = (workload.get("spec") or {}).get("replicas", 1)
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return False, "waiting for the cluster to pick up the change", 0
    if workload.get("kind") == "StatefulSet":
        ready = status.get("readyReplicas", 0)
        revision = status.get("updateRevision")
        replaced = sum(1 for p in pods if p["ready"] and p.get("revision") == revision)
        if ready < replicas:
            return False, f"{ready} of {replicas} pods ready", replaced
        if revision != status.get("currentRevision"):
            return False, f"{status.get('updatedReplicas', 0)} of {replicas} pods updated", replaced
        return True, "", replicas
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    replaced = min(updated, available)
    progressing = _condition(workload, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return False, "the rollout stalled: " + (progressing.get("message") or "no progress"), replaced
    if updated < replicas:
        return False, f"{updated} of {replicas} new pods created", replaced
    if status.get("replicas", 0) > updated:
        old = status["replicas"] - updated
        return False, f"{_plural(old, 'old pod')} still to stop", replaced
    if available < updated:
        return False, f"{available} of {updated} new pods available", replaced
    return True, "", replicas


def _image_of(workload: Mapping, service_id: str) -> str:
    containers = ((workload.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    return next((c.get("image", "") for c in containers if c.get("name") == service_id), "")


def _service_item(
    service: ExpectedService,
    workload: dict | None,
    pods: list[dict],
    expect: Expectation,
    now: datetime,
    grace: timedelta,
) -> dict:
    endpoint = f"https://{service.public_hosts[0]}" if service.public else f"{service.id}:{service.port} (internal)"
    details = {
        "name": service.name,
        "kind": service.kind,
        "public": service.public,
        "endpoint": endpoint,
        "hosts": list(service.public_hosts),
        "settled": False,
    }
    intent = expect.intent if expect.intent and expect.intent.covers(service.id) else None
    late = _late(intent, now, grace)
    serving = [p for p in pods if p["ready"]]
    stopping = [p for p in pods if p["stopping"]]
    desired = service.replicas if expect.enabled else 0

    def item(
        health: str, detail: str, ready: str, *, settled: bool = False, named: bool = False, drift: str = ""
    ) -> dict:
        # ``named``: the detail names what it is about already (a pod's fault).
        reason = detail if named else f"{service.name}: {detail}"
        if health == PROGRESS and late:
            health, reason = YELLOW, f"{reason} (longer than expected)"
        return _item(
            service.id,
            health,
            reason,
            **{**details, "settled": settled},
            ready=ready,
            progress=detail,
            drift=drift,
        )

    if expect.deleting:
        return item(PROGRESS, "being removed", f"{len(serving)}/0")
    if workload is None and service.awaiting_build:
        return {**item(YELLOW, "waiting for the first build", "0"), "awaiting_build": True}
    if workload is None:
        # Not applied yet: the first apply, or a change that adds it (a first rollout) still to be applied.
        if not expect.applied or intent or not expect.up_to_date:
            return item(PROGRESS, "being created", "0")
        return item(RED if service.public or service.kind == "component" else YELLOW, "missing from the cluster", "0")
    arrived = _generation(workload) >= expect.generation
    observed_replicas = (workload.get("spec") or {}).get("replicas", 1)
    done, waits_for, replaced = _rollout(workload, pods)
    young = _age(workload, now) <= grace or any(not p["ready"] and p["health"] == PROGRESS for p in pods)
    ready_text = f"{len(serving)}/{desired}"
    # The cluster says something is wrong: a fault on a pod of this service that is not stopping.
    faulty = [p for p in pods if p["fault"] and not p["stopping"]]

    if not expect.enabled:
        running = [p for p in pods if p["phase"] not in ("Succeeded", "Failed")]
        if running:
            count = len(stopping) or len(running)
            what = f"{_plural(count, 'pod')} {'stopping' if stopping else 'to stop'}"
            # Ours to stop: pods already stopping, or a workload the cluster has not scaled down yet.
            health = PROGRESS if intent or not arrived or stopping or observed_replicas == 0 else YELLOW
            return item(health, what, ready_text)
        if arrived and observed_replicas > 0 and not intent:
            what = f"{service.id} was scaled to {observed_replicas} by hand while disabled"
            return item(YELLOW, f"drift: scaled to {observed_replicas} by hand while disabled", ready_text, drift=what)
        return item(DISABLED, "disabled, nothing runs", "0/0", settled=arrived)

    # Ours to judge only once our change arrived: before that, the workload is the old one.
    if arrived and not intent:
        if observed_replicas != desired:
            health = RED if not serving and service.public else YELLOW
            what = f"{service.id} was scaled to {observed_replicas} by hand"
            detail = f"drift: scaled to {observed_replicas} by hand (Diploi runs {desired})"
            return item(health, detail, ready_text, drift=what)
        image = _image_of(workload, service.id)
        if service.image and image and image != service.image:
            detail = f"drift: image changed to {image} by hand (Diploi runs {service.image})"
            return item(YELLOW, detail, ready_text, drift=f"the image of {service.id} was changed to {image} by hand")

    if faulty:
        worst_pod = max(faulty, key=lambda p: _RANK[p["health"]])
        if worst_pod["health"] == RED and not serving and (service.public or service.kind == "component"):
            return item(RED, worst_pod["reason"], ready_text, named=True)
        still = f"; {len(serving)} of {desired} still serving" if serving else ""
        return item(YELLOW, worst_pod["reason"] + still, ready_text, named=True)

    if arrived and done and len(serving) >= desired and not stopping:
        return item(GREEN, f"{len(serving)}/{desired} ready", ready_text, settled=True)

    # Not there yet: progress while one of our operations (or a pod that is still young) explains it.
    if intent and intent.kind == RESTART:
        detail = f"{replaced} of {desired} pods replaced" if arrived else "asking the cluster"
    elif not arrived:
        detail = "applying"
    elif stopping and done:
        detail = f"{_plural(len(stopping), 'old pod')} stopping"
    else:
        detail = waits_for or f"{len(serving)} of {desired} pods ready"
    if intent or young:
        return item(PROGRESS, detail, ready_text)
    if not serving:
        # Nothing serves and nobody asked for a change: red behind a public endpoint.
        waiting = next((p for p in pods if p["health"] != GREEN), None)
        why = waiting["reason"] if waiting else "no pod running"
        return item(RED if service.public else YELLOW, f"{service.name} down: {why}", ready_text, named=True)
    return item(YELLOW, f"{len(serving)}/{desired} ready, {detail}", ready_text)


def _service_items(
    expect: Expectation,
    observed: Observation,
    pod_items: list[dict],
    now: datetime,
    grace: timedelta,
) -> list[dict]:
    workloads = {_labels(w).get(L.SERVICE): w for w in observed.workloads}
    return [
        _service_item(
            service, workloads.get(service.id), [p for p in pod_items if p["service"] == service.id], expect, now, grace
        )
        for service in expect.services
    ]


# ----------------------------------------------------------------------------- the app's own status

APP_STATUS_KIND = "app-status"  # the kind of a Services item the app reported (not a Kubernetes Service)
_APP_COLOURS = {"green": GREEN, "yellow": YELLOW, "red": RED, "grey": UNKNOWN}
_APP_WORDS = {"green": "OK", "yellow": "degraded", "red": "failing", "grey": "not applicable"}


def _app_status_items(
    expect: Expectation, observed: Observation, services: list[dict], now: datetime, grace: timedelta
) -> list[dict]:
    """The app's own status items (docs/templates.md) as Services items.

    An app that does not answer is "status unknown: <reason>": unknown, and yellow once it has stayed so
    longer than ``grace`` while its service serves; never red on its own. What a service that does
    not serve cannot answer, the service's own item already says. A yellow item the app marks pending
    (``isPending``: still starting) is progress for ``grace`` from when it became pending.
    """
    report = observed.app_status
    if report is None or not expect.status_service or not expect.enabled or expect.deleting:
        return []
    if observed.namespace is None:
        return []
    service = next((item for item in services if item["key"] == expect.status_service), None)
    name = service["name"] if service else expect.status_service
    common = {"kind": APP_STATUS_KIND, "service": expect.status_service, "reported_by": name}
    if report.get("error"):
        failing_since = report.get("failing_since")
        if isinstance(failing_since, str):
            failing_since = _time(failing_since)
        serving = service is not None and service["health"] == GREEN
        late = serving and failing_since is not None and now - failing_since > grace
        return [
            _item(
                f"{expect.status_service} status",
                YELLOW if late else UNKNOWN,
                f"{name} status unknown: {report['error']}",
                name=f"{name} status",
                message=report["error"],
                description="",
                pending=False,
                **common,
            )
        ]
    items = []
    for entry in report.get("items") or ():
        message = entry.get("message") or _APP_WORDS.get(entry.get("status"), "")
        health = _APP_COLOURS.get(entry.get("status"), UNKNOWN)
        pending_since = _time(entry.get("pending_since"))
        if health == YELLOW and entry.get("pending") and pending_since and now - pending_since <= grace:
            # A check the app says is still under way (starting up): progress for a while, not a fault.
            health = PROGRESS
        items.append(
            _item(
                f"{expect.status_service}:{entry['identifier']}",
                health,
                f"{entry['name']}: {message}",
                name=entry["name"],
                message=entry.get("message", ""),
                description=entry.get("description", ""),
                pending=bool(entry.get("pending")),
                **common,
            )
        )
    return items


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


def _node(items: list[dict], empty_reason: str, ok_reason: str, *, empty_health: str = GREEN) -> dict:
    if not items:
        return {"health": empty_health, "reason": empty_reason, "items": []}
    health = worst(item["health"] for item in items)
    if health in (GREEN, DISABLED):
        return {"health": health, "reason": ok_reason, "items": items}
    problem = next(item for item in items if item["health"] == health)
    others = sum(1 for item in items if item["health"] not in (GREEN, DISABLED)) - 1
    reason = problem["reason"] + (f" (and {others} more)" if others > 0 else "")
    return {"health": health, "reason": reason, "items": items}


def compute_status(
    expect: Expectation,
    observed: Observation,
    *,
    now: datetime,
    grace: timedelta,
    previous: Mapping | None = None,
    app_grace: timedelta | None = None,
    builds: Mapping | None = None,
) -> dict:
    """The status tree of one deployment. ``previous`` (the last tree) carries "since" forward.
    ``app_grace``: how long the app's status may stay unknown before it is yellow (default ``grace``).

    ``builds``: the Builds node, computed from the deployment's Build rows
    (`deployments.builds.status.builds_node`); None for a deployment that builds nothing.
    Its effect on the overall health is `apply_builds`'s.

    ``settled`` says whether the cluster shows the desired state of ``generation`` in
    full (every service rolled out and ready, or disabled with nothing running): what
    an operation waits for before it succeeds.
    """
    seen = {
        item["key"]: item for item in ((previous or {}).get("nodes") or {}).get("containers", {}).get("items") or ()
    }
    events: dict[str, list[dict]] = {}
    for event in sorted(observed.events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or ""):
        events.setdefault((event.get("involvedObject") or {}).get("uid", ""), []).append(event)
    pods = [
        _pod_item(
            pod,
            _service(expect, pod),
            expect,
            now,
            grace,
            seen.get(pod["metadata"]["name"]),
            events.get(pod["metadata"].get("uid", ""), ()),
        )
        for pod in sorted(observed.pods, key=_pod_order)
    ]
    storage = _storage_items(expect, observed, now, grace)
    services = _service_items(expect, observed, pods, now, grace)
    tls = certificate_states(observed) if observed.tls_managed else {}
    _edge_problems(observed, services, tls, now, grace)
    app_items = _app_status_items(expect, observed, services, now, grace if app_grace is None else app_grace)
    # What the app reports as yellow, red or pending counts; green, grey and a status not known yet do not.
    counted = [item for item in app_items if item["health"] in (PROGRESS, YELLOW, RED)]
    running = _plural(len(pods), "pod") + " running"
    if pods and any(p["stopping"] for p in pods):
        running = f"{_plural(len(pods), 'pod')}, {sum(1 for p in pods if p['stopping'])} stopping"
    nodes = {
        "storage": _node(storage, "No storage", f"{_plural(len(storage), 'volume')} bound"),
        "builds": dict(builds) if builds else _node([], "No builds: the template's images run as they are", ""),
        "containers": _node(
            pods,
            "Nothing runs: the deployment is disabled" if not expect.enabled else "No containers running",
            running,
            empty_health=DISABLED if not expect.enabled else GREEN,
        ),
        "services": _node(
            services + counted, "No services", "All services ready" if expect.enabled else "Disabled: nothing runs"
        ),
    }
    nodes["services"]["items"] = services + app_items
    health, reason = _overall(expect, observed, nodes, now, grace)
    drift = _drift(expect, observed, services)
    if drift and health not in (RED, UNKNOWN):
        # What we own was lost or changed behind our back: the watcher re-applies it (level-triggered).
        health, reason = YELLOW, f"drift: {'; '.join(drift)}; restoring"
    settled = (
        observed.namespace is not None
        and not expect.deleting
        and all(item["settled"] for item in services)
        and nodes["storage"]["health"] not in (RED,)
    )
    tree = {
        # What the cluster alone says; `apply_builds` derives the overall health from it and the builds.
        "base": {"health": health, "reason": reason},
        "health": health,
        "reason": reason,
        "nodes": nodes,
        "tls": tls,
        "tls_managed": observed.tls_managed,
        "generation": expect.generation,
        "settled": settled,
        "drift": drift,
    }
    return carry_since(apply_builds(tree, nodes["builds"], deleting=expect.deleting), previous, now)


def apply_builds(tree: Mapping, builds: Mapping, *, deleting: bool = False) -> dict:
    """``tree`` with ``builds`` as its Builds node, and the overall health the builds make of
    what the cluster says (``tree["base"]``; the tree's own health for a tree stored without one).

    A failed newest build of a component (the node red, the component in ``builds["failed"]``):
    - while an older build of it serves, the deployment is yellow with the build's reason (a
      deployment otherwise green), the last good version keeps serving;
    - while no build of it ever succeeded (its service waits for the first build), nothing can
      run it: red with the build's reason.
    Builds queued or running change nothing: the deployment serves what it served. Nothing
    changes an unknown, disabled, in-progress or deleting deployment's health. Pure.
    """
    tree = {**tree, "nodes": {**(tree.get("nodes") or {}), "builds": dict(builds)}}
    base = tree.get("base") or {"health": tree.get("health") or GREEN, "reason": tree.get("reason") or ""}
    tree["base"] = base
    health, reason = base["health"], base["reason"]
    failed = set(builds.get("failed") or ())
    if builds.get("health") == RED and failed and not deleting and health in (GREEN, YELLOW, RED):
        services = ((tree["nodes"].get("services") or {}).get("items")) or []
        awaiting = [s for s in services if s.get("awaiting_build") and s["key"] in failed]
        if awaiting:
            names = ", ".join(s["name"] for s in awaiting)
            health, reason = RED, f"{builds['reason']}; {names} cannot run until a build succeeds"
        elif health == GREEN:
            health, reason = YELLOW, f"{builds['reason']}; the last good version keeps serving"
    tree["health"], tree["reason"] = health, reason
    return tree


PUBLIC_INGRESS = "public"  # the Ingress of a deployment's public hosts (manifests)


def _drift(expect: Expectation, observed: Observation, services: list[dict]) -> list[str]:
    """What we own that the cluster lost or that was changed by hand, while no operation of ours runs."""
    if expect.deleting or expect.intent or not expect.applied or observed.namespace is None:
        return []
    found = [item["drift"] for item in services if item.get("drift")]
    if "Service" in observed.watched:
        present = {s["metadata"]["name"] for s in observed.services if not s["metadata"].get("deletionTimestamp")}
        found += [f"Service {s.id} was deleted" for s in expect.services if s.id not in present]
        # The headless Service governing each StatefulSet (manifests.headless_service).
        governing = {
            (w.get("spec") or {}).get("serviceName") or ""
            for w in observed.workloads
            if w.get("kind") == "StatefulSet" and not w["metadata"].get("deletionTimestamp")
        }
        known = {"", *(s.id for s in expect.services)}
        found += [f"Service {name} was deleted" for name in sorted(governing - present - known)]
    if "Ingress" in observed.watched and any(s.public for s in expect.services):
        if not any(i["metadata"]["name"] == PUBLIC_INGRESS for i in observed.ingresses):
            found.append(f"Ingress {PUBLIC_INGRESS} was deleted")
    return found


SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # set by the cluster's endpointslice-controller


def _without_endpoints(observed: Observation, service_id: str, now: datetime, grace: timedelta) -> bool:
    """Whether the Service ``service_id`` routes to no ready endpoint although its pods serve, for
    longer than ``grace``: since its newest ready pod turned ready, and since the Service exists (the
    cluster's controller lags a pod's readiness by a moment). Only when EndpointSlices are watched."""
    if "EndpointSlice" not in observed.watched:
        return False
    service = next((s for s in observed.services if s["metadata"]["name"] == service_id), None)
    if service is None or service["metadata"].get("deletionTimestamp"):
        return False  # a deleted Service is drift, said so elsewhere
    for item in observed.endpoint_slices:
        if _labels(item).get(SERVICE_NAME_LABEL) != service_id:
            continue
        if any((e.get("conditions") or {}).get("ready") for e in item.get("endpoints") or ()):
            return False
    moments = [_time(service["metadata"].get("creationTimestamp"))]
    for pod in observed.pods:
        if _labels(pod).get(L.SERVICE) == service_id and _pod_ready(pod):
            became_ready = (_condition(pod, "Ready") or {}).get("lastTransitionTime")
            moments.append(_time(became_ready or pod["metadata"].get("creationTimestamp")))
    latest = max((m for m in moments if m is not None), default=None)
    return latest is not None and now - latest > grace


def _edge_problems(
    observed: Observation, services: list[dict], tls: Mapping[str, str], now: datetime, grace: timedelta
) -> None:
    """Public services whose pods serve but whose edge does not: no ready endpoint behind the Service
    (red: nothing reaches the app), no ingress address, a failed certificate."""
    ingress = next((i for i in observed.ingresses if i["metadata"]["name"] == PUBLIC_INGRESS), None)
    admitted = bool(((ingress or {}).get("status") or {}).get("loadBalancer", {}).get("ingress"))
    for item in services:
        if not item["public"] or item["health"] != GREEN:
            continue
        host = item["hosts"][0]
        states = [(h, tls.get(h, "")) for h in item["hosts"]]
        failed = next((f"TLS for {h} {state}" for h, state in states if state.startswith("failed")), "")
        if _without_endpoints(observed, item["key"], now, grace):
            item["health"], item["settled"] = RED, False
            item["reason"] = (
                f"{item['name']} down: no ready endpoint behind {host}: the Service {item['key']} "
                f"routes to none of its {item['ready'].split('/')[0]} ready pods"
            )
        elif ingress is not None and not admitted and _age(ingress, now) > grace:
            item["health"], item["reason"] = YELLOW, f"{item['name']}: no ingress controller has admitted {host}"
        elif failed:
            item["health"], item["reason"] = YELLOW, f"{item['name']}: {failed}"


def _service(expect: Expectation, pod: Mapping) -> ExpectedService | None:
    service_id = _labels(pod).get(L.SERVICE)
    return next((s for s in expect.services if s.id == service_id), None)


def _pod_order(pod: Mapping) -> tuple[str, str]:
    return _labels(pod).get(L.SERVICE, ""), pod["metadata"]["name"]


def _deleting(expect: Expectation, observed: Observation, now: datetime, grace: timedelta) -> tuple[str, str]:
    """What a delete still waits for: never red, whatever is going away."""
    waits = []
    if observed.pods:
        waits.append(f"{_plural(len(observed.pods), 'pod')} to stop")
    if observed.claims:
        waits.append(f"{_plural(len(observed.claims), 'volume')} to be released")
    if observed.namespace is not None and not waits:
        waits.append(f"the namespace {expect.namespace} to go away")
    what = "waiting for " + " and ".join(waits) if waits else "the cluster has removed everything; finishing"
    words = intent_words(expect.intent, expect, now) if expect.intent else "Deleting"
    if _late(expect.intent, now, grace):
        return YELLOW, f"{words}: still {what}"
    return PROGRESS, f"{words}: {what}"


def _overall(
    expect: Expectation, observed: Observation, nodes: Mapping[str, dict], now: datetime, grace: timedelta
) -> tuple[str, str]:
    intent = expect.intent
    if expect.deleting:
        return _deleting(expect, observed, now, grace)
    if observed.namespace is None:
        if not expect.applied or intent:
            words = intent_words(intent, expect, now) if intent else "Creating"
            if _late(intent, now, grace):
                return YELLOW, f"{words}: the namespace is still not there (longer than expected)"
            return PROGRESS, f"{words}: applying the deployment to the cluster"
        return RED, f"The namespace {expect.namespace} is missing from the cluster"
    if (observed.namespace.get("status") or {}).get("phase") == "Terminating":
        return YELLOW, f"The namespace {expect.namespace} is being deleted"
    # The Builds node counts apart (`apply_builds`): a build under way changes nothing of what serves.
    order = ("services", "storage", "containers")
    # A failing pod while its service still serves is an issue, not an outage: the
    # services say whether anything is down, the containers at most that something is wrong.
    colours = {name: nodes[name]["health"] for name in order}
    if colours["containers"] == RED:
        colours["containers"] = YELLOW
    health = worst(colours.values())
    if health == GREEN:
        return GREEN, "All services ready"
    if health == DISABLED:
        return DISABLED, "Disabled: nothing runs; enable it in Options to start it again"
    if health in (PROGRESS, YELLOW) and intent:
        # Our own operation explains it: say which, who asked, and what it waits for.
        item = next(
            (
                i
                for i in nodes["services"]["items"]
                if i["health"] == health and i.get("kind") != APP_STATUS_KIND and intent.covers(i["key"])
            ),
            None,
        )
        if item is not None:
            detail = item["progress"]
            if not intent.target and len(expect.services) > 1:
                detail = f"{item['name']} {detail}"
            late = " (longer than expected)" if health == YELLOW and item["reason"].endswith("expected)") else ""
            if health == PROGRESS or late:
                return health, f"{intent_words(intent, expect, now)}: {detail}{late}"
    # The first node with the worst colour explains it; services speak most plainly.
    node = next(nodes[name] for name in order if colours[name] == health)
    return health, node["reason"]


TIMELINE_LENGTH = 10


def carry_timeline(tree: dict, previous: Mapping | None, now: datetime) -> dict:
    """The last TIMELINE_LENGTH changes of the overall health, newest first: a flap shows."""
    timeline = list((previous or {}).get("timeline") or [])
    if not timeline or timeline[0].get("health") != tree["health"]:
        timeline.insert(0, {"at": now.isoformat(), "health": tree["health"], "reason": tree["reason"][:300]})
    tree["timeline"] = timeline[:TIMELINE_LENGTH]
    return tree


def carry_since(tree: dict, previous: Mapping | None, now: datetime) -> dict:
    """Give every node and item a "since": kept from ``previous`` while its colour stays the same.
    Carries the health timeline forward too."""
    carry_timeline(tree, previous, now)
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
        # A node that knows since when it is so (Builds: when its deciding build finished) says so itself.
        node["since"] = old_node.get("since", stamp) if same(old_node, node) else node.get("since") or stamp
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
    return carry_timeline(tree, previous, now)
