"""The watcher's coalescing (issue 17): a quiet deployment's first event is recomputed at once,
whatever other deployments do, and so is the next one (the cluster's reaction to the change);
what follows waits for the window's end.

The window is long here (COALESCE seconds) so that the order of things, not a tight timing, is
what the tests check: load can only make a status later, never earlier than its window allows.
"""

import time

import pytest

from deployments import lifecycle, services
from deployments.cluster.connection import get_cluster
from deployments.models import DeploymentStatus
from deployments.watcher import ClusterWatcher
from tests.support import built, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

COALESCE = 4.0
WEB = {"diploi.io/service": "web"}


@pytest.fixture
def pair(make_project, developer, emulator, settings):
    settings.STATUS_GRACE_SECONDS = 60  # nothing turns red for the time that passes
    project = make_project("static-nginx")
    deployments = [
        built(services.deployment_create(project=project, name=name, stage="production", actor=developer))
        for name in ("first", "second")
    ]
    for deployment in deployments:
        lifecycle.reconcile_run(deployment.pk, owner="test")
    return deployments


@pytest.fixture
def watcher(pair):
    # The start settles on the watcher's default window: with the long one, the first list and the
    # events that trail a start cost two windows or more (17 s a test). Once both deployments
    # stayed quiet for two seconds (nothing dirty or held, a whole budget), the long window applies
    # from their next event on: a quiet deployment is in the same state whatever the window was.
    watcher = ClusterWatcher(get_cluster, coalesce=0.05, recompute_every=600, resync_every=3600).start()
    wait_for(lambda: all(health(d) == "green" for d in pair), timeout=30, what="both green")
    # A loaded machine spreads the events that trail a start out: wait until both stayed quiet.
    wait_for(lambda: quiet_for(watcher, pair, seconds=2), timeout=60, interval=0.1, what="both quiet")
    watcher.coalesce = COALESCE
    yield watcher
    watcher.stop()


def quiet_for(watcher, deployments, *, seconds: float) -> bool:
    if not all(watcher.is_quiet(d.pk) for d in deployments):
        return False
    time.sleep(seconds)
    return all(watcher.is_quiet(d.pk) for d in deployments)


def recomputes_for_events() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("diploi_watcher_event_lag_seconds_count") or 0.0


def health(deployment) -> str | None:
    status = DeploymentStatus.objects.filter(deployment=deployment).first()
    return status and status.health


def test_a_quiet_deployment_is_recomputed_at_once_while_another_is_in_a_burst(watcher, pair, emulator):
    first, second = pair
    emulator.faults.crash(first.namespace, selector=WEB)
    wait_for(lambda: health(first) != "green", timeout=COALESCE * 0.75, what="the first deployment's change")
    # The first one is inside its window now; the second one was quiet all along.
    crashed = time.monotonic()
    emulator.faults.crash(second.namespace, selector=WEB)
    wait_for(lambda: health(second) != "green", timeout=COALESCE * 0.75, what="the second deployment's change")
    assert time.monotonic() - crashed < COALESCE * 0.75


def test_a_change_and_what_follows_it_at_once_are_recomputed_at_once_and_the_rest_waits(watcher, pair, emulator):
    """A crash loop changes the pod again and again: its first two recomputes come at once, the
    third only when the budget refilled, one window after the first."""
    first, _ = pair
    before = recomputes_for_events()
    emulator.faults.crash(first.namespace, selector=WEB)
    wait_for(lambda: recomputes_for_events() - before >= 2, timeout=COALESCE * 0.75, interval=0.01, what="two")
    two = time.monotonic()
    time.sleep(COALESCE * 0.5)  # the crash loop restarts the container several times meanwhile
    assert recomputes_for_events() - before == 2
    wait_for(lambda: recomputes_for_events() - before >= 3, timeout=COALESCE + 20, interval=0.02, what="a third")
    assert time.monotonic() - two >= COALESCE * 0.5


def test_what_follows_within_the_window_waits_for_its_end_and_is_not_lost(watcher, pair, emulator):
    first, _ = pair
    before = recomputes_for_events()
    emulator.faults.crash(first.namespace, selector=WEB)
    wait_for(lambda: health(first) != "green", timeout=COALESCE * 0.75, interval=0.02, what="the change")
    changed = time.monotonic()
    # The crash loop's next change took the second recompute the budget allows at once.
    wait_for(lambda: recomputes_for_events() - before >= 2, timeout=COALESCE * 0.5, interval=0.01, what="two")
    emulator.faults.heal(first.namespace, selector=WEB)  # the pod turns ready again: inside the window

    wait_for(lambda: health(first) == "green", timeout=COALESCE + 20, interval=0.02, what="green again")
    # Held until the window of the recompute that showed the crash ended (polling lag aside: 0.5 s).
    assert time.monotonic() - changed >= COALESCE - 0.5
