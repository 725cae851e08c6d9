"""A run's page, live: `ws/deployments/<id>/actions/<run_id>/` sends the run's fragment (state,
output, exit status) each time the runner stores more, swapped out-of-band like every other
fragment. Any member may watch (as for logs); outsiders and other deployments' runs get 4404."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.loader import render_to_string

from deployments import selectors
from deployments.access import deployment_for
from deployments.actions.models import ActionRun
from deployments.actions.services import action_run_group
from deployments.consumers import FragmentConsumer


class ActionRunConsumer(FragmentConsumer):
    page_kind = "action"

    def authorize(self) -> bool:
        kwargs = self.scope["url_route"]["kwargs"]
        self.deployment_id, self.run_id = kwargs["deployment_id"], kwargs["run_id"]
        self.group = action_run_group(self.run_id)
        try:
            deployment, _ = deployment_for(self.scope["user"], self.deployment_id)
        except (Http404, PermissionDenied):
            return False
        return ActionRun.objects.filter(pk=self.run_id, deployment=deployment).exists()

    async def action_changed(self, message):
        await self.push()

    def render(self) -> str | None:
        # Access is checked again on every push: a member removed from the team stops receiving.
        try:
            deployment, membership = deployment_for(self.scope["user"], self.deployment_id)
        except (Http404, PermissionDenied):
            return None
        run = ActionRun.objects.select_related("requested_by", "cancelled_by").filter(
            pk=self.run_id, deployment=deployment
        )
        run = run.first()
        if run is None:
            return None
        context = {
            "deployment": deployment,
            "run": run,
            "can": selectors.Permissions.of(membership),
            "oob": True,
        }
        return render_to_string("deployments/action_run.html#action-run", context)
