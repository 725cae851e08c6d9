"""The builds' kind of pending work for the sweeper: a cluster build whose runner task was lost."""

from __future__ import annotations

from deployments import sweeper


def _send_again(build_id: int) -> bool:
    from deployments.builds.models import Build
    from deployments.builds.tasks import run_build

    sent = sweeper.dispatch.send(run_build, build_id)
    if sent:
        from deployments.builds.services import _due

        Build.objects.filter(pk=build_id).update(due_at=_due())
    return sent


def _find_lost(now) -> list[int]:
    from deployments.builds.services import lost_builds

    return lost_builds(now)


def register() -> None:
    sweeper.register(sweeper.PendingWork("build", find_lost=_find_lost, send_again=_send_again))
