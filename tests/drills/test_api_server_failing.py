"""The Kubernetes API answering 500 to everything (its open watches dropped), then 429 with
Retry-After while it recovers, as people go on working.

CI shortens the outage; `DRILL_API_OUTAGE_SECONDS=60 DRILL_API_THROTTLE_SECONDS=30` gives the
figure of the issue's drill (docs/architecture.md has both).
"""

import os
import time
from collections import defaultdict

from deployments.models import Deployment, DeploymentStatus
from tests.drills.convergence import wait_until_converged
from tests.drills.figures import record_figure
from tests.support import wait_for

OUTAGE_SECONDS = float(os.environ.get("DRILL_API_OUTAGE_SECONDS", "10"))
THROTTLE_SECONDS = float(os.environ.get("DRILL_API_THROTTLE_SECONDS", "8"))
RETRY_AFTER = 3


def test_everything_converges_after_the_api_fails_then_throttles(drill_stack, person, make_project, emulator):
    project = make_project("django-postgres")
    for number in range(4):
        person.create(project, f"steady-{number}")
    wait_until_converged(project, since=time.monotonic(), timeout=60, drill="setup", stack=drill_stack)
    steady = list(Deployment.objects.filter(project=project).order_by("pk"))

    # Rules apply in order: 500s first, then (once they expire) 429s.
    emulator.faults.fail_requests(500, seconds=OUTAGE_SECONDS, end_watches=True)
    emulator.faults.fail_requests(429, seconds=OUTAGE_SECONDS + THROTTLE_SECONDS, retry_after=RETRY_AFTER)
    started = time.monotonic()
    # People go on working meanwhile: what they ask is recorded, and its tasks back off.
    person.change_environment(steady[0], "1")
    person.restart(steady[1])
    person.delete(steady[2])
    person.create(project, "during-outage")

    shown = [d for d in steady if d != steady[2]]

    def unknown_saying_since_when() -> bool:
        statuses = DeploymentStatus.objects.filter(deployment__in=shown)
        return len(statuses) == len(shown) and all(
            s.health == "unknown" and s.reason.startswith("Unknown since ") and "(500)" in s.reason for s in statuses
        )

    wait_for(unknown_saying_since_when, timeout=OUTAGE_SECONDS, interval=0.2, what="statuses to turn unknown")
    record_figure(f"API failing: statuses unknown (saying since when) {time.monotonic() - started:.1f} s after")

    healed = started + OUTAGE_SECONDS + THROTTLE_SECONDS
    time.sleep(max(0.0, healed - time.monotonic()))
    wait_until_converged(
        project,
        since=healed,
        timeout=90,
        drill=f"API 500 for {OUTAGE_SECONDS:.0f} s, then 429 for {THROTTLE_SECONDS:.0f} s, from its recovery",
        stack=drill_stack,
    )

    # Retry-After was honoured: no request met a 429 again sooner than it said (the same request,
    # from a task's retry or a watch coming back, waited at least that long).
    throttled = defaultdict(list)
    answered = emulator.faults.answered()
    for fault in answered:
        if fault.status == 429:
            throttled[(fault.method, fault.path)].append(fault.at)
    gaps = [later - earlier for times in throttled.values() for earlier, later in zip(times, times[1:], strict=False)]
    record_figure(
        f"API failing: {sum(f.status == 500 for f in answered)} requests answered 500, "
        f"{sum(f.status == 429 for f in answered)} answered 429; "
        f"shortest wait after a 429: {min(gaps, default=RETRY_AFTER):.1f} s (asked {RETRY_AFTER} s)"
    )
    assert throttled, "nothing met the throttling"
    assert all(gap >= RETRY_AFTER - 0.1 for gap in gaps), sorted(gaps)[:5]
