"""The watcher, in a thread, against the emulator: statuses, staleness, 410s, CPU, several watchers."""

import threading
import time
from contextlib import contextmanager

import pytest
from django.db import connection, connections, transaction

from deployments import lifecycle, services
from deployments.cluster.connection import get_cluster
from deployments.models import CpuSample, DeploymentStatus, Lease
from deployments.watcher import LEASES, STATUS_LEASE_SECONDS, ClusterWatcher
from tests.conftest import need_service
from tests.support import built, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fast_status(settings):
    settings.STATUS_GRACE_SECONDS = 2
    settings.STATUS_STALE_SECONDS = 1
    settings.CPU_SAMPLE_SECONDS = 1


@pytest.fixture
def watcher(emulator, fast_status):
    watcher = ClusterWatcher(get_cluster, coalesce=0.05, recompute_every=0.5, resync_every=3600).start()
    yield watcher
    watcher.stop()


@pytest.fixture
def deployment(make_project, developer, emulator):
    deployment = services.deployment_create(
        project=make_project("django-postgres"), name="feature-x", stage="development", actor=developer
    )
    lifecycle.reconcile_run(deployment.pk, owner="test")
    return deployment


@contextmanager
def row_locked_elsewhere(rows):
    """The row of ``rows`` locked by another connection's transaction for the duration of the block."""
    held, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                rows.select_for_update().get()
                held.set()
                release.wait(20)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5)
        yield
    finally:
        release.set()
        holder.join(10)


def health(deployment) -> str | None:
    status = DeploymentStatus.objects.filter(deployment=deployment).first()
    return status and status.health


def test_it_turns_what_the_cluster_does_into_a_status(watcher, deployment):
    seen = set()

    def green():
        seen.add(health(deployment))
        return health(deployment) == "green"

    wait_for(green, timeout=20, interval=0.02, what="green")
    assert "progress" in seen  # starting, before ready: progress (yellow only past the 2 s grace)
    status = DeploymentStatus.objects.get(deployment=deployment)
    assert status.reason == "All services ready"
    assert {item["key"] for item in status.tree["nodes"]["services"]["items"]} == {"app", "postgres"}
    assert status.observed_at is not None


def test_it_reports_a_crash_loop_as_red_with_the_reason(watcher, deployment, emulator):
    wait_for(lambda: health(deployment) == "green", timeout=20, what="green")
    emulator.faults.crash(deployment.namespace, selector={"diploi.io/service": "app"}, exit_code=3)

    def crash_reported():
        status = DeploymentStatus.objects.get(deployment=deployment)
        return status.health == "red" and status.reason.startswith("app: CrashLoopBackOff") and status

    status = wait_for(crash_reported, timeout=20, what="red with the crash loop as reason")
    assert "last exit 3" in status.reason


def test_it_goes_stale_when_the_api_is_down_and_recovers(watcher, deployment, emulator):
    wait_for(lambda: health(deployment) == "green", timeout=20, what="green")
    emulator.take_down()
    wait_for(lambda: health(deployment) == "unknown", timeout=20, what="unknown")
    status = DeploymentStatus.objects.get(deployment=deployment)
    # Whichever the watcher noticed first: a request refused, or its open watch cut by the server going away.
    assert status.reason.startswith("Unknown since ")
    assert "cannot be reached" in status.reason or "was cut" in status.reason, status.reason
    assert status.cluster_error
    emulator.bring_up()
    wait_for(lambda: health(deployment) == "green", timeout=20, what="green again")


def test_it_lists_again_after_its_watch_expired(watcher, deployment, emulator):
    wait_for(lambda: health(deployment) == "green", timeout=20, what="green")
    emulator.faults.expire_history()
    get_cluster().interrupt_watches()  # the watches resume from a resourceVersion that is now gone
    emulator.faults.crash(deployment.namespace, selector={"diploi.io/service": "postgres"})
    wait_for(lambda: health(deployment) == "yellow", timeout=20, what="yellow from the relisted state")


def test_it_samples_cpu_into_history(watcher, deployment):
    wait_for(
        lambda: CpuSample.objects.filter(deployment=deployment, tier="raw", total_millicores__gt=0).exists(),
        timeout=20,
        what="a CPU sample",
    )
    assert CpuSample.objects.filter(deployment=deployment, tier="minute").exists()
    assert CpuSample.objects.filter(deployment=deployment, tier="quarter").exists()
    wait_for(lambda: DeploymentStatus.objects.get(deployment=deployment).cpu_millicores, timeout=10, what="cpu now")
    # Memory beside CPU, from the same metrics: the emulator's pods use part of their request.
    memory = DeploymentStatus.objects.get(deployment=deployment).memory_bytes
    assert 1024**2 < memory < 4 * 1024**3
    assert CpuSample.objects.filter(deployment=deployment, tier="raw", total_memory_bytes__gt=0).exists()


def test_it_lets_several_watchers_run_without_corrupting_each_other(watcher, emulator, deployment):
    second = ClusterWatcher(get_cluster, coalesce=0.05, recompute_every=0.5, resync_every=3600).start()
    try:
        wait_for(lambda: health(deployment) == "green", timeout=20, what="green")
        emulator.faults.crash(deployment.namespace, selector={"diploi.io/service": "app"})
        wait_for(lambda: health(deployment) == "red", timeout=20, what="red")
        assert DeploymentStatus.objects.filter(deployment=deployment).count() == 1
        raw = CpuSample.objects.filter(deployment=deployment, tier="raw")
        wait_for(lambda: raw.count() >= 2, timeout=20, what="samples")
        times = list(raw.values_list("bucket_start", flat=True))
        assert len(times) == len(set(times))  # one sampler at a time
    finally:
        second.stop()


def test_a_watcher_that_stops_cleanly_hands_its_leased_jobs_over_at_once(emulator, fast_status, settings, deployment):
    settings.APP_STATUS_SECONDS = 1
    settings.APP_STATUS_TIMEOUT_SECONDS = 30  # the app-status lease lasts 3 s + 30 s per batch of silent apps

    def holder(name: str) -> str | None:
        lease = Lease.objects.filter(name=name).first()
        return lease and lease.holder

    first = ClusterWatcher(get_cluster, coalesce=0.05, recompute_every=0.5, resync_every=1).start()
    second = None
    try:
        wait_for(lambda: all(holder(name) == first.name for name in LEASES), timeout=20, what="the first holds all")
        second = ClusterWatcher(get_cluster, coalesce=0.05, recompute_every=0.5, resync_every=1).start()
        time.sleep(1.5)  # the second asks for every lease meanwhile, and stands by
        assert all(holder(name) == first.name for name in LEASES)

        first.stop()
        stopped = time.monotonic()

        assert not Lease.objects.filter(holder=first.name).exists()  # given back, not left to expire
        wait_for(lambda: all(holder(name) == second.name for name in LEASES), timeout=10, what="the second takes over")
        took = time.monotonic() - stopped
        assert took < 10 < Lease.objects.get(name="app-status").expires_at.timestamp() - time.time()  # not expiry
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_status_locked_elsewhere_does_not_hold_up_the_others(watcher, emulator, deployment, make_project, developer):
    if connection.vendor != "postgresql":
        need_service("row locks need PostgreSQL (set DATABASE_URL; CI does)")
    other = built(
        services.deployment_create(
            project=make_project("static-nginx"), name="other", stage="production", actor=developer
        )
    )
    lifecycle.reconcile_run(other.pk, owner="test")
    wait_for(lambda: health(deployment) == "green" and health(other) == "green", timeout=20, what="both green")
    with row_locked_elsewhere(DeploymentStatus.objects.filter(deployment=deployment)):
        time.sleep(1)  # the periodic pass (every 0.5 s) meets the held row
        emulator.faults.crash(other.namespace, selector={"diploi.io/service": "web"})
        wait_for(lambda: health(other) == "red", timeout=10, what="the other deployment red while a row is held")
    assert health(deployment) == "green"


def test_a_change_never_waits_for_the_statuses_lease_to_be_renewed(watcher, emulator, deployment):
    if connection.vendor != "postgresql":
        need_service("row locks need PostgreSQL (set DATABASE_URL; CI does)")
    wait_for(lambda: health(deployment) == "green", timeout=20, what="green")
    with row_locked_elsewhere(Lease.objects.filter(name="statuses")):
        time.sleep(1.2)  # a renewal (every second) is due meanwhile: it waits for the held row
        emulator.faults.crash(deployment.namespace, selector={"diploi.io/service": "app"})
        # Still well within the lease (5 s from the last renewal): the change is written meanwhile.
        wait_for(lambda: health(deployment) == "red", timeout=3, what="red while the renewal waits")


def test_the_status_writer_keeps_its_lease_while_nothing_happens(emulator, fast_status, deployment):
    def holder() -> str | None:
        lease = Lease.objects.filter(name="statuses").first()
        return lease and lease.holder

    # Nothing is due for 30 s: the writer's lease must not hang on its recompute loop waking up.
    first = ClusterWatcher(get_cluster, coalesce=0.05, recompute_every=30, resync_every=3600).start()
    second = None
    try:
        wait_for(lambda: health(deployment) == "green" and holder() == first.name, timeout=20, what="green")
        second = ClusterWatcher(get_cluster, coalesce=0.05, recompute_every=30, resync_every=3600).start()
        time.sleep(STATUS_LEASE_SECONDS + 2)  # the cluster at rest
        assert holder() == first.name  # no hand-over (each costs the new writer a pass over everything)
    finally:
        first.stop()
        if second is not None:
            second.stop()
