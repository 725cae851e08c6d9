"""The Logs tab (the page; lines come over `ws/deployments/<id>/logs/`) and the plain-text download."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.text import slugify
from django.views.decorators.http import require_safe

from deployments import selectors
from deployments.access import deployment_for
from deployments.cluster.connection import get_cluster
from deployments.cluster.errors import ClusterError, Invalid, NotFound
from deployments.logs.sources import BadLogRequest, log_sources, named_source, named_sources
from deployments.logs.streams import command_output, stamp_key

DOWNLOAD_DEFAULT = 1000
DOWNLOAD_MAX = 10000
COMMAND_DOWNLOAD_SECONDS = 5  # a command source's download: what it prints in this long (a file's: its time limit)


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
    named = named_sources(deployment)
    wanted = {key: request.GET.get(key, "")[:253] for key in ("pod", "component", "container", "source")}
    if not wanted["pod"] and not wanted["component"] and not wanted["source"]:
        if named:
            wanted["source"] = named[0].name
        elif pods:
            wanted["pod"] = pods[0]["pod"]
        elif components:
            wanted["component"] = components[0][0]
    chosen = next((entry for entry in named if entry.name == wanted["source"]), None)
    context.update(
        log_named=named,
        chosen_source=chosen,
        log_pods=pods,
        log_components=components,
        wanted=wanted,
        previous=request.GET.get("previous") in ("1", "true"),
        command_download_seconds=COMMAND_DOWNLOAD_SECONDS,
    )
    return render(request, "deployments/deployment_logs.html", context)


def parse_since(text: str) -> str:
    """A moment typed by a user (ISO 8601; without a zone: UTC, as the page says) as the RFC 3339 UTC
    timestamp the log API takes; ValueError with what is wrong."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("since: a date and time such as 2026-12-02T14:30 (UTC), please.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment > datetime.now(UTC):
        raise ValueError("since: that moment has not come yet.")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


@login_required
@require_safe
def deployment_logs_download(request, deployment_id: int):
    """As a text file: the last ``lines`` lines (default 1000, at most 10,000), or (with ``since``) what
    was printed since that moment (at most the last 10,000 lines), of a container, of every replica of a
    component (each line naming its pod), or of a named log source printing to the container's output.
    Not follow: what the cluster holds now. A named file or command source: see `_download_run`."""
    deployment, _ = deployment_for(request.user, deployment_id)
    since = None
    if request.GET.get("since"):
        try:
            since, tail = parse_since(request.GET["since"][:64]), DOWNLOAD_MAX
        except ValueError as error:
            return HttpResponseBadRequest(str(error), content_type="text/plain")
    else:
        try:
            tail = int(request.GET.get("lines") or DOWNLOAD_DEFAULT)
        except ValueError:
            return HttpResponseBadRequest("lines: a whole number, please.", content_type="text/plain")
    if not 1 <= tail <= DOWNLOAD_MAX:
        return HttpResponseBadRequest(f"lines: between 1 and {DOWNLOAD_MAX}.", content_type="text/plain")
    previous = request.GET.get("previous") in ("1", "true")
    name = request.GET.get("source", "")[:253]
    try:
        if name and named_source(deployment, name).exec_command(1):
            if since or previous:
                raise BadLogRequest(
                    f"{name!r} is read by running a command: it has no timestamps to start from and no previous "
                    "container; download its last lines"
                )
            return _download_run(request, deployment, name, tail)
        sources = log_sources(
            deployment,
            pod=request.GET.get("pod", "")[:253],
            component=request.GET.get("component", "")[:253],
            container=request.GET.get("container", "")[:253],
            source=name,
        )
        chunks = []
        for source in sources:
            lines = get_cluster().pod_log(
                source.pod,
                deployment.namespace,
                container=source.container,
                tail_lines=tail,
                since_time=since,
                previous=previous,
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
    label = sources[0].pod if len(sources) == 1 else slugify(request.GET.get("component") or name) or "logs"
    suffix = ("-previous" if previous else "") + ("-since" if since else "")
    response["Content-Disposition"] = f'attachment; filename="{deployment.name}-{label}{suffix}.log"'
    return response


def _download_run(request, deployment, name: str, lines: int) -> HttpResponse:
    """A named file or command source as a text file, from one run of its own in each running pod (or in
    ``pod``), all at once: a file's last ``lines`` lines (``tail -n``, not followed), or what a command
    prints until it exits, has printed ``lines`` lines or has run COMMAND_DOWNLOAD_SECONDS. Lines carry no
    timestamp (the container writes none); with several pods each line names its pod, pod after pod."""
    sources = log_sources(deployment, pod=request.GET.get("pod", "")[:253], source=name, file_lines=lines, follow=False)

    async def run_all():
        return await asyncio.gather(
            *(
                command_output(
                    namespace=deployment.namespace, source=source, max_lines=lines, seconds=COMMAND_DOWNLOAD_SECONDS
                )
                for source in sources
            )
        )

    outputs = async_to_sync(run_all)()
    if all(output.failed for output in outputs):
        reasons = "; ".join(f"{output.source.pod}: {output.stopped}" for output in outputs)
        return HttpResponseBadRequest(f"{name!r} could not be run: {reasons}", content_type="text/plain")
    prefix = len(outputs) > 1
    body = "".join(
        (f"{output.source.pod} " if prefix else "") + line + "\n" for output in outputs for line in output.lines
    )
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{deployment.name}-{slugify(name) or "logs"}.log"'
    return response
