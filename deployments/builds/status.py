"""The status tree's Builds node, from Build rows (as plain dicts). Pure.

The node is part of the stored status (`deployments.statuses`): computed with
the rest of the tree by the watcher, and again whenever a build row moves
(`statuses.status_builds_refresh`), so the project list, the team's counts and
the page all read one health. A failed newest build of a component is red here
(its component in ``failed``); what that makes of the deployment is
`cluster.status.apply_builds`'s: yellow while the last good build serves, red
while there is none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from deployments.cluster.status import GREEN, RED, YELLOW, worst

SHOWN = 6  # builds listed in the node


def build_item(build: Mapping, *, deployed_commit: str, log_url: str) -> dict:
    """One build as a node item: colour, a one-line reason and what the row says of it."""
    state, sha = build["state"], build["commit_sha"][:7] or "no commit"
    who = f"{build['component']} at {sha}"
    if state == "succeeded":
        running = build["commit_sha"] == deployed_commit
        health, reason = GREEN, f"{who} built" + (", running" if running else "")
    elif state == "failed":
        health, reason = RED, f"Build of {who} failed: {build['message'] or 'see its log'}"
    elif state == "cancelled":
        health, reason = GREEN, f"Build of {who} cancelled: {build['message']}"
    elif state == "running":
        step = f"step {build['step']}/{build['steps']}: {build['step_text']}" if build["steps"] else "starting"
        health, reason = YELLOW, f"Building {who}, {step}"
    else:
        health, reason = YELLOW, f"Build of {who} queued"
    started, finished = build.get("started_at"), build.get("finished_at")
    duration = (finished - started).total_seconds() if started and finished else None
    percent = 100 if state == "succeeded" else int(100 * build["step"] / build["steps"]) if build["steps"] else 0
    return {
        "key": f"#{build['id']}",
        "health": health,
        "reason": reason,
        "build_id": build["id"],
        "component": build["component"],
        "state": state,
        "step": build["step"],
        "steps": build["steps"],
        "step_text": build["step_text"],
        "percent": percent,
        "short_sha": build["commit_sha"][:7],
        "commit_message": build["commit_message"],
        "simulated": build["simulated"],
        "requested_at": _iso(build.get("requested_at")),
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "duration_seconds": duration,
        "link": build["run_url"] or log_url,
        "external": bool(build["run_url"]),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def builds_node(
    builds: Iterable[Mapping],
    *,
    buildable: Iterable[str],
    deployed_commit: str,
    log_url: Callable[[int], str],
    stage_mode: str,
) -> dict:
    """The Builds node: the newest builds (``builds`` newest first), coloured by each component's newest
    one. ``log_url(build_id)``: the build's own log page."""
    buildable = list(buildable)
    if not buildable:
        reason = (
            "No builds: development runs the code cloned from Git"
            if stage_mode == "source"
            else "No builds: the template's images run as they are"
        )
        return {"health": GREEN, "reason": reason, "items": []}
    items = [build_item(b, deployed_commit=deployed_commit, log_url=log_url(b["id"])) for b in builds]
    newest: dict[str, dict] = {}
    for item in items:
        newest.setdefault(item["component"], item)
    items = items[:SHOWN]
    if not newest:
        return {"health": YELLOW, "reason": "No builds yet: use “Deploy latest” to build the branch", "items": []}
    deciding = list(newest.values())
    health = worst(item["health"] for item in deciding)
    if health == GREEN:
        if all(item["state"] == "succeeded" for item in deciding):
            reason = f"Running {deployed_commit[:7]}" if deployed_commit else "All components built"
        else:
            reason = next(item["reason"] for item in deciding if item["state"] != "succeeded")
    else:
        reason = next(item["reason"] for item in deciding if item["health"] == health)
    since = next(
        (
            item["finished_at"] or item["started_at"] or item["requested_at"]
            for item in deciding
            if item["health"] == health
        ),
        None,
    )
    failed = sorted(component for component, item in newest.items() if item["state"] == "failed")
    return {"health": health, "reason": reason, "items": items, "since": since, "failed": failed}
