"""Reads of action runs for pages: the stage's actions with their latest run, a deployment's runs."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404

from deployments.actions.models import ActionRun
from deployments.actions.services import stage_actions, timeout_of
from templates_catalog.spec import Action


@dataclass(frozen=True)
class OfferedAction:
    action: Action
    asks_first: bool
    timeout_seconds: int
    last_run: ActionRun | None

    @property
    def active_run(self) -> ActionRun | None:
        return self.last_run if self.last_run is not None and self.last_run.is_active else None


def offered_actions(deployment) -> list[OfferedAction]:
    """The stage's actions in the template's order, each with its latest run (one query)."""
    actions = stage_actions(deployment)
    if not actions:
        return []
    latest: dict[str, ActionRun] = {}
    names = [action.name for action in actions]
    recent = ActionRun.objects.filter(deployment=deployment, action__in=names).select_related("requested_by")
    for run in recent.order_by("-requested_at", "-pk")[:100]:
        latest.setdefault(run.action, run)
    return [
        OfferedAction(action, action.asks_first(deployment.stage), timeout_of(action), latest.get(action.name))
        for action in actions
    ]


def by_component(offered: list[OfferedAction]) -> dict[str, list[OfferedAction]]:
    grouped: dict[str, list[OfferedAction]] = {}
    for item in offered:
        grouped.setdefault(item.action.component, []).append(item)
    return grouped


def deployment_runs(deployment, limit: int = 50) -> list[ActionRun]:
    return list(
        ActionRun.objects.filter(deployment=deployment)
        .select_related("requested_by")
        .defer("output")
        .order_by("-requested_at", "-pk")[:limit]
    )


def run_page(deployment, run_id: int) -> ActionRun:
    """A run of ``deployment`` (404 for another deployment's run, as for a missing one)."""
    run = (
        ActionRun.objects.select_related("requested_by", "cancelled_by")
        .filter(pk=run_id, deployment=deployment)
        .first()
    )
    if run is None:
        raise Http404("No such action run.")
    return run
