"""The cluster runner against the emulator over HTTP: the Job, the followed log, the digest."""

from __future__ import annotations

import pytest

from deployments.builds import runner
from deployments.builds import services as builds
from deployments.builds.models import Build
from deployments.cluster import builds as manifests
from deployments.cluster.connection import get_cluster


def run_until_done(build_id: int, owner: str = "task-1", attempts: int = 200) -> str:
    """What the task does across its retries: run again while the pod starts."""
    import time

    for _ in range(attempts):
        try:
            return runner.build_run(build_id, owner=owner)
        except runner.StillBuilding:
            time.sleep(0.05)
    raise AssertionError("the build never finished")


@pytest.fixture
def queued(emulator, staging):
    return Build.objects.get(deployment=staging)


def test_it_builds_in_the_builds_namespace_follows_the_log_and_rolls_out_the_digest(queued, staging, settings):
    assert run_until_done(queued.pk) == "succeeded"
    queued.refresh_from_db()
    assert queued.state == "succeeded"
    assert queued.digest.startswith("sha256:") and len(queued.digest) == 71
    assert (queued.step, queued.steps) == (5, 5)
    assert "=> [4/5] RUN pip install" in queued.log
    assert "Successfully installed django" in queued.log
    assert queued.log_until
    cluster = get_cluster()
    job = cluster.get("Job", f"build-{queued.pk}", settings.BUILD_NAMESPACE)
    assert job["metadata"]["labels"]["diploi.io/deployment"] == str(staging.pk)
    assert job["spec"]["template"]["spec"]["initContainers"][0]["command"][4:] == [
        queued.repository,
        queued.commit_sha,
        "main",
    ]
    namespace = cluster.get("Namespace", settings.BUILD_NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    staging.refresh_from_db()
    assert staging.built_images == {"app": f"{queued.image}@{queued.digest}"}


def test_a_build_failing_at_a_step_says_why_and_keeps_nothing(queued, staging, emulator):
    emulator.faults.fail_builds(step=4, message="pip install: exit code: 1")
    assert run_until_done(queued.pk) == "failed"
    queued.refresh_from_db()
    assert queued.state == "failed"
    assert queued.message == "[4/5] RUN pip install --no-cache-dir -r requirements.txt: pip install: exit code: 1"
    assert queued.step == 4
    staging.refresh_from_db()
    assert staging.built_images == {}


def test_running_twice_creates_one_job_and_the_copy_finds_the_build_done(queued):
    assert run_until_done(queued.pk, owner="a") == "succeeded"
    assert run_until_done(queued.pk, owner="b") == "succeeded"
    jobs, _ = get_cluster().list("Job", label_selector=manifests.build_selector(queued.pk))
    assert len(jobs) == 1


@pytest.fixture
def slow_builds(settings, staging):
    """An emulator whose builds take a few seconds, and Diploi pointed at it."""
    from cluster_emulator import ClusterEmulator
    from deployments.cluster.connection import reset_cluster

    emu = ClusterEmulator(speed="fast", build_step_delay=0.5).start()
    emu.audit.enable()
    settings.KUBE_API_URL = emu.url
    settings.LOST_TASK_SECONDS = 1  # a stream silent for a third of a second is opened again, renewing the claim
    reset_cluster()
    yield Build.objects.get(deployment=staging), emu
    reset_cluster()
    emu.stop()


@pytest.mark.django_db(transaction=True)
def test_a_second_copy_of_the_task_leaves_a_followed_build_to_its_follower(slow_builds):
    import threading

    from django.db import connection

    from tests.support import wait_for

    queued, emu = slow_builds
    outcome = {}

    def first():
        try:
            outcome["first"] = run_until_done(queued.pk, owner="first")
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    wait_for(lambda: Build.objects.get(pk=queued.pk).follower == "first", timeout=10, what="a follower")
    assert runner.build_run(queued.pk, owner="second") == "followed by another task"
    thread.join(30)
    assert outcome["first"] == "succeeded"
    build = Build.objects.get(pk=queued.pk)
    lines = [line for line in build.log.splitlines() if line.startswith("=> ")]
    assert len(lines) == len(set(lines))  # each step once: nothing appended twice
    assert sum(line.startswith(("=> [1/5]", "=> [2/5]", "=> [3/5]", "=> [4/5]", "=> [5/5]")) for line in lines) == 5
    assert build.follower == ""
    follows = [r for r in emu.audit.records() if r.subresource == "log" and r.name.startswith("build-")]
    assert len(follows) > 3  # the quiet stream was opened again, from where it was


@pytest.mark.django_db(transaction=True)
def test_a_build_cancelled_while_it_runs_loses_its_job(slow_builds, settings):
    import threading

    from django.db import connection

    from tests.support import wait_for

    queued, _ = slow_builds
    outcome = {}

    def follow():
        try:
            outcome["run"] = run_until_done(queued.pk, owner="runner")
        finally:
            connection.close()

    thread = threading.Thread(target=follow)
    thread.start()
    wait_for(lambda: Build.objects.get(pk=queued.pk).step >= 1, timeout=10, what="the build under way")
    builds.build_cancel(build_id=queued.pk, reason="Cancelled by a test")
    thread.join(30)
    assert outcome["run"] == "cancelled"
    job = get_cluster().get("Job", f"build-{queued.pk}", settings.BUILD_NAMESPACE)
    assert job is None or job["metadata"].get("deletionTimestamp")


@pytest.mark.django_db
def test_a_build_past_its_deadline_is_stopped_and_says_so(slow_builds, settings):
    queued, _ = slow_builds
    settings.BUILD_DEADLINE_SECONDS = 1  # the simulated build takes about five
    assert run_until_done(queued.pk) == "failed"
    queued.refresh_from_db()
    assert queued.message == "It ran longer than BUILD_DEADLINE_SECONDS (1 s) and was stopped"
