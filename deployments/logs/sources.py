"""Which containers a log request names: checked against the deployment's own pods in the cluster."""

from __future__ import annotations

from deployments.cluster import labels
from deployments.cluster.connection import get_cluster
from deployments.logs.streams import Position, Source
from templates_catalog.spec import LogSource

MAX_RESUME = 50  # positions a reconnect may carry (one per replica)
FILE_TAIL = 500  # lines of a file source shown before following it


class BadLogRequest(ValueError):
    """The request names no container of this deployment; the message says what is wrong."""


def named_sources(deployment) -> list[LogSource]:
    """The template's named log sources (its ``logs:`` list) for the components this deployment runs."""
    spec = deployment.spec
    present = {c.id for c in spec.components} | {a.id for a in spec.addons}
    return [entry for entry in spec.logs if entry.component in present]


def named_source(deployment, name: str) -> LogSource:
    """The template's log source called ``name``; `BadLogRequest` if there is none."""
    for entry in named_sources(deployment):
        if entry.name == name:
            return entry
    raise BadLogRequest(f"the template of {deployment.name} has no log source {name!r}")


def log_sources(
    deployment,
    *,
    pod: str = "",
    component: str = "",
    container: str = "",
    source: str = "",
    file_lines: int = FILE_TAIL,
    follow: bool = True,
) -> list[Source]:
    """The containers to read: ``pod``'s (one replica) or every pod of ``component`` (all replicas),
    ``container`` or the pod's main one (the component's own); or the template's log source named
    ``source`` (in every pod of its component, or in ``pod``): its container's output, or its file
    (its last ``file_lines`` lines, then, with ``follow``, what is added) or command run through
    exec. Only pods carrying this deployment's labels count, so a name from
    another namespace or deployment is refused like a missing one. Asks the cluster (raises
    `ClusterError` when it cannot be asked); raises `BadLogRequest`."""
    command: tuple[str, ...] = ()
    if source:
        entry = named_source(deployment, source)
        component, container, command = entry.component, "", entry.exec_command(file_lines, follow=follow)
    if not pod and not component:
        raise BadLogRequest("say which pod, component or log source to read")
    pods, _ = get_cluster().list(
        "Pod", namespace=deployment.namespace, label_selector=labels.deployment_selector(deployment.pk)
    )
    pods = sorted(pods, key=lambda p: p["metadata"]["name"])
    if pod:
        pods = [p for p in pods if p["metadata"]["name"] == pod]
        if not pods:
            raise BadLogRequest(f"{deployment.name} has no pod {pod!r} (it may have been replaced: reload)")
        if source and (pods[0]["metadata"].get("labels") or {}).get(labels.SERVICE) != component:
            raise BadLogRequest(f"pod {pod!r} is not one of {component!r}, where {source!r} is read")
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
        sources.append(Source(found["metadata"]["name"], chosen, command))
    if command:  # a command runs only in a started container: the others would only refuse it
        running = [s for s, p in zip(sources, pods, strict=True) if (p.get("status") or {}).get("phase") == "Running"]
        if not running:
            raise BadLogRequest(f"no pod of {component!r} is running: {source!r} runs in one that is")
        sources = running
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
