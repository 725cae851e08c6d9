"""The Logs tab (the page; lines come over `ws/deployments/<id>/logs/`) and the plain-text download."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_safe

from deployments import selectors
from deployments.access import deployment_for
from deployments.cluster.connection import get_cluster
from deployments.cluster.errors import ClusterError, Invalid, NotFound
from deployments.logs.sources import BadLogRequest, log_sources
from deployments.logs.streams import stamp_key

DOWNLOAD_DEFAULT = 1000
DOWNLOAD_MAX = 10000


def log_choices(tree: dict) -> tuple[list[dict], list[tuple[str, int]]]:
    """What the page offers to read, from the stored status tree (no cluster call): each pod's
    containers with their restarts, and each component (all its replicas)."""
    pods, components = [], {}
    for item in (tree.get("nodes") or {}).get("containers", {}).get("items", []):
        service = item.get("service") or ""
        if service:
            components[service] = components.get(service, 0) + 1
        pods.append({"pod": item.get("key", ""), "service": service, "containers": item.get("containers") or []})
    return pods, sorted(components.items())


@login_required
@require_safe
def deployment_logs(request, deployment_id: int):
    deployment, membership = deployment_for(request.user, deployment_id)
    context = selectors.deployment_context(deployment, membership, tab="logs")
    pods, components = log_choices(context["tree"])
    wanted = {key: request.GET.get(key, "")[:253] for key in ("pod", "component", "container")}
    if not wanted["pod"] and not wanted["component"]:
        if pods:
            wanted["pod"] = pods[0]["pod"]
        elif components:
            wanted["component"] = components[0][0]
    context.update(
        log_pods=pods,
        log_components=components,
        wanted=wanted,
        previous=request.GET.get("previous") in ("1", "true"),
    )
    return render(request, "deployments/deployment_logs.html", context)


@login_required
@require_safe
def deployment_logs_download(request, deployment_id: int):
    """The last ``lines`` lines (default 1000, at most 10,000) of a container, or of every replica of
    a component (each line naming its pod), as a text file. Not follow: what the cluster holds now."""
    deployment, _ = deployment_for(request.user, deployment_id)
    try:
        tail = int(request.GET.get("lines") or DOWNLOAD_DEFAULT)
    except ValueError:
        return HttpResponseBadRequest("lines: a whole number, please.", content_type="text/plain")
    if not 1 <= tail <= DOWNLOAD_MAX:
        return HttpResponseBadRequest(f"lines: between 1 and {DOWNLOAD_MAX}.", content_type="text/plain")
    previous = request.GET.get("previous") in ("1", "true")
    try:
        sources = log_sources(
            deployment,
            pod=request.GET.get("pod", "")[:253],
            component=request.GET.get("component", "")[:253],
            container=request.GET.get("container", "")[:253],
        )
        chunks = []
        for source in sources:
            lines = get_cluster().pod_log(
                source.pod, deployment.namespace, container=source.container, tail_lines=tail, previous=previous
            )
            prefix = f"{source.pod} " if len(sources) > 1 else ""
            chunks += [(line.partition(" ")[0], prefix + line) for line in lines]
    except (BadLogRequest, Invalid, NotFound) as error:  # Invalid: not started yet, or no previous run
        return HttpResponseBadRequest(str(error), content_type="text/plain")
    except ClusterError as error:
        return HttpResponse(f"The cluster cannot give this log now: {error}", status=503, content_type="text/plain")
    if len(sources) > 1:
        chunks.sort(key=lambda chunk: stamp_key(chunk[0]) or "")  # replicas interleaved by time
    body = "".join(text + "\n" for _, text in chunks[-tail:])
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    name = sources[0].pod if len(sources) == 1 else request.GET.get("component", "logs")
    suffix = "-previous" if previous else ""
    response["Content-Disposition"] = f'attachment; filename="{deployment.name}-{name}{suffix}.log"'
    return response
