"""Delays of the simulated cluster, per speed profile.

"realistic" takes seconds, like a small real cluster, so a person watching the UI
sees pods pull, start and become ready. "fast" takes tenths of a second, for tests.
Every delay can be overridden by keyword when the emulator is built.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass
class Timing:
    """Seconds the simulated controllers wait before each transition."""

    schedule_delay: float
    pod_start_delay: float  # ContainerCreating (image pull) -> Running
    ready_delay: float  # Running -> Ready
    init_container_delay: float  # each init container runs this long
    job_run_delay: float  # a Job's container runs this long, then exits 0
    pod_termination_delay: float  # graceful termination takes this long (capped by the grace period)
    crash_run_delay: float  # a crashing container runs this long before it exits
    crash_backoff: float  # first CrashLoopBackOff delay, doubled on each restart...
    crash_backoff_cap: float  # ...up to this
    namespace_termination_delay: float
    service_account_delay: float  # a new namespace gets its default ServiceAccount after this
    pvc_bind_delay: float
    ingress_address_delay: float
    certificate_delay: float
    bookmark_interval: float  # watches with allowWatchBookmarks get a BOOKMARK when idle this long
    event_ttl: float  # core Events are garbage collected after this
    controller_retry: float  # a controller that failed to write retries after this
    build_step_delay: float = 0.5  # a simulated BuildKit build spends this long on each step
    app_status_warmup: float = 30.0  # an app's status says yellow (starting) this long after its pod is ready
    log_line_interval: float = 0.0  # a running server prints a line (a request, a checkpoint) this often; 0: never


PROFILES = {
    "realistic": Timing(
        schedule_delay=0.3,
        pod_start_delay=3.0,
        ready_delay=2.0,
        init_container_delay=2.0,
        job_run_delay=5.0,
        pod_termination_delay=2.0,
        crash_run_delay=2.0,
        crash_backoff=5.0,
        crash_backoff_cap=60.0,
        namespace_termination_delay=5.0,
        service_account_delay=0.5,
        pvc_bind_delay=2.0,
        ingress_address_delay=3.0,
        certificate_delay=8.0,
        bookmark_interval=60.0,
        event_ttl=3600.0,
        controller_retry=1.0,
        build_step_delay=0.5,
        app_status_warmup=30.0,
        log_line_interval=4.0,
    ),
    "fast": Timing(
        schedule_delay=0.02,
        pod_start_delay=0.1,
        ready_delay=0.1,
        init_container_delay=0.05,
        job_run_delay=0.15,
        pod_termination_delay=0.05,
        crash_run_delay=0.1,
        crash_backoff=0.1,
        crash_backoff_cap=0.8,
        namespace_termination_delay=0.2,
        service_account_delay=0.05,
        pvc_bind_delay=0.1,
        ingress_address_delay=0.1,
        certificate_delay=0.2,
        bookmark_interval=1.0,
        event_ttl=3600.0,
        controller_retry=0.1,
        build_step_delay=0.02,
        app_status_warmup=0.0,
    ),
}

DELAY_NAMES = frozenset(f.name for f in fields(Timing))


def timing_for(speed: str, **overrides: float) -> Timing:
    """The profile for `speed` ("realistic" or "fast") with the given delays replaced."""
    if speed not in PROFILES:
        raise ValueError(f"unknown speed {speed!r}: expected one of {sorted(PROFILES)}")
    unknown = set(overrides) - DELAY_NAMES
    if unknown:
        raise TypeError(f"unknown delay(s): {', '.join(sorted(unknown))}")
    return replace(PROFILES[speed], **overrides)
