"""Running actions with the real kubernetes client against the emulator: output, exit status, pod,
cancel and timeout (the process really dies), one at a time, confirmation, a lost runner."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from deployments.actions import pending, runner, services
from deployments.actions.models import ActionRun
from deployments.models import ActivityEntry
from tests.support import alive, wait_for

# Transactional only where the runner works in a thread of the test's (its own database connection).
pytestmark = pytest.mark.django_db
THREADED = pytest.mark.django_db(transaction=True)


def start(found, name: str, developer, **options) -> ActionRun:
    run, created = services.action_run_start(deployment=found.deployment, action_name=name, actor=developer, **options)
    assert created
    return run


def run_in_thread(run: ActionRun) -> tuple[threading.Thread, dict]:
    outcome = {}

    def target():
        try:
            outcome["state"] = runner.action_run(run.pk, owner="test-runner")
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def printed_pid(run: ActionRun) -> int:
    def pid():
        match = re.search(r"pid (\d+)", ActionRun.objects.get(pk=run.pk).output)
        return int(match.group(1)) if match else None

    return wait_for(pid, timeout=20, what="the command's pid in its output")


def test_it_runs_in_the_oldest_ready_pod_and_keeps_stdout_stderr_and_the_exit_status(acting, developer):
    found = acting()
    run = start(found, "Say hello", developer)
    assert runner.action_run(run.pk, owner="test-runner") == ActionRun.State.FAILED
    run.refresh_from_db()
    assert run.exit_status == 3 and run.message == "Exited with status 3."
    assert "to stdout" in run.output and "to stderr" in run.output
    assert "nul:\ufffd." in run.output  # a NUL printed is kept as U+FFFD (PostgreSQL text holds none)
    assert run.pod == found.running_pods()[0] and run.container == "app"
    assert run.started_at and run.finished_at and run.duration_seconds >= 0
    assert run.requested_by == developer and run.command[:2] == ["sh", "-c"]
    assert set(ActivityEntry.objects.filter(deployment=found.deployment).values_list("action", flat=True)) >= {
        "action.requested",
        "action.failed",
    }


def test_the_templates_migrate_action_answers_through_the_emulators_stand_in(acting, developer):
    found = acting()
    run = start(found, "Apply migrations", developer)
    assert runner.action_run(run.pk, owner="test-runner") == ActionRun.State.SUCCEEDED
    run.refresh_from_db()
    assert run.exit_status == 0
    assert "No migrations to apply." in run.output
    assert "[cluster emulator] stand-in for `python manage.py migrate --noinput`" in run.output


def test_only_the_end_of_a_long_output_is_kept_and_the_whole_is_counted(acting, developer, settings):
    settings.ACTION_OUTPUT_MAX_BYTES = 1000
    run = start(acting(), "Chatter", developer)
    assert runner.action_run(run.pk, owner="test-runner") == ActionRun.State.SUCCEEDED
    run.refresh_from_db()
    total = sum(len(f"line {i}\n") for i in range(2000))
    assert run.output_bytes == total and run.output_truncated
    assert len(run.output.encode()) == 1000 and run.output.endswith("line 1998\nline 1999\n")


@THREADED
def test_cancel_kills_the_command_in_the_pod(acting, developer, settings):
    found = acting()
    run = start(found, "Sleep", developer)
    thread, outcome = run_in_thread(run)
    pid = printed_pid(run)
    assert alive(pid)
    cancelled = time.monotonic()
    services.action_run_cancel(run=run, actor=developer)
    thread.join(30)
    assert outcome["state"] == ActionRun.State.CANCELLED
    # Stopped by the SIGTERM, the run ends then, not once the SIGKILL's grace has passed.
    assert time.monotonic() - cancelled < settings.ACTION_KILL_GRACE_SECONDS
    run.refresh_from_db()
    assert run.state == ActionRun.State.CANCELLED and run.cancelled_by == developer
    assert run.exit_status == 143  # SIGTERM from the guard, as the pod's shell reports it
    assert f"Cancelled by {developer.username}" in run.message
    wait_for(lambda: not alive(pid), timeout=10, what="the cancelled command gone")


@THREADED
def test_a_command_deaf_to_sigterm_is_killed_after_the_grace(acting, developer, settings):
    settings.ACTION_KILL_GRACE_SECONDS = 1
    found = acting()
    run = start(found, "Sleep deaf", developer)
    thread, outcome = run_in_thread(run)
    pid = printed_pid(run)
    services.action_run_cancel(run=run, actor=developer)
    thread.join(30)
    assert outcome["state"] == ActionRun.State.CANCELLED
    run.refresh_from_db()
    assert run.exit_status == 137  # SIGKILL from the guard, the grace after its SIGTERM
    wait_for(lambda: not alive(pid), timeout=10, what="the deaf command gone")


@THREADED
def test_a_run_past_its_timeout_is_stopped(acting, developer, settings):
    found = acting()
    run = start(found, "Sleep briefly", developer)
    assert run.timeout_seconds == 2
    thread, outcome = run_in_thread(run)
    pid = printed_pid(run)
    thread.join(30)
    assert outcome["state"] == ActionRun.State.TIMED_OUT
    run.refresh_from_db()
    assert run.message.startswith("Timed out after 2 s") and run.exit_status == 143
    wait_for(lambda: not alive(pid), timeout=10, what="the timed-out command gone")


def test_the_default_timeout_comes_from_the_setting(acting, developer, settings):
    settings.ACTION_TIMEOUT_SECONDS = 42
    run = start(acting(), "Sleep", developer)
    assert run.timeout_seconds == 42


def test_one_run_of_an_action_at_a_time_a_second_click_gets_the_running_one(acting, developer):
    found = acting()
    first = start(found, "Sleep", developer)
    again, created = services.action_run_start(deployment=found.deployment, action_name="Sleep", actor=developer)
    assert not created and again.pk == first.pk
    other = start(found, "Say hello", developer)  # another action may run meanwhile
    assert other.pk != first.pk
    # The database refuses a second active row of that action, whoever writes it.
    with pytest.raises(IntegrityError), transaction.atomic():
        ActionRun.objects.create(
            deployment=found.deployment, action="Sleep", component="app", command=["true"], timeout_seconds=5
        )
    services.action_run_cancel(run=first, actor=developer)  # queued: it ends at once
    assert ActionRun.objects.get(pk=first.pk).state == ActionRun.State.CANCELLED
    assert runner.action_run(first.pk, owner="test-runner") == "not queued"
    _, created = services.action_run_start(deployment=found.deployment, action_name="Sleep", actor=developer)
    assert created


def test_an_action_that_asks_first_needs_the_confirmation(acting, developer):
    found = acting()
    with pytest.raises(services.ConfirmationRequired):
        services.action_run_start(deployment=found.deployment, action_name="Drop everything", actor=developer)
    assert not ActionRun.objects.exists()
    run = start(found, "Drop everything", developer, confirmed=True)
    assert run.confirmed
    assert runner.action_run(run.pk, owner="test-runner") == ActionRun.State.SUCCEEDED


def test_unknown_actions_and_other_stages_actions_are_refused(acting, developer):
    found = acting()
    for name in ("Nope", "Check deployment settings"):  # the second exists only in staging and production
        with pytest.raises(ValidationError, match="has no action"):
            services.action_run_start(deployment=found.deployment, action_name=name, actor=developer)


def test_no_ready_pod_fails_the_run_with_the_reason(acting, developer):
    found = acting()
    run = ActionRun.objects.create(
        deployment=found.deployment, action="Ghost", component="nothing", command=["true"], timeout_seconds=5
    )
    assert runner.action_run(run.pk, owner="test-runner") == ActionRun.State.FAILED
    run.refresh_from_db()
    assert run.message == "no pod of nothing is ready; run it again once one is"


def test_oldest_ready_pod_is_chosen_by_creation_then_name():
    def pod(name, created, ready=True):
        conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
        return {
            "metadata": {"name": name, "creationTimestamp": created},
            "status": {"phase": "Running", "conditions": conditions},
        }

    pods = [
        pod("app-b", "2026-01-01T00:00:02Z"),
        pod("app-a", "2026-01-01T00:00:02Z"),
        pod("app-c", "2026-01-01T00:00:01Z", ready=False),
    ]
    assert runner.oldest_ready_pod(pods, "app") == "app-a"
    pods.append(pod("app-z", "2026-01-01T00:00:00Z"))
    assert runner.oldest_ready_pod(pods, "app") == "app-z"
    with pytest.raises(runner.NoReadyPod, match=r"no pod of app is ready \(1 starting\)"):
        runner.oldest_ready_pod([pod("app-c", "x", ready=False)], "app")


def test_the_sweeper_ends_a_run_whose_runner_stopped_and_resends_a_lost_queued_one(acting, developer):
    found = acting()
    stale = start(found, "Sleep", developer)
    queued = start(found, "Say hello", developer)
    past = timezone.now() - timedelta(seconds=1)
    ActionRun.objects.filter(pk=stale.pk).update(state="running", runner="gone", started_at=past, due_at=past)
    ActionRun.objects.filter(pk=queued.pk).update(due_at=past)
    assert set(services.lost_runs(timezone.now())) == {stale.pk, queued.pk}
    assert pending._send_again(stale.pk)
    stale.refresh_from_db()
    assert stale.state == ActionRun.State.FAILED and "no heartbeat" in stale.message
    assert pending._send_again(queued.pk)
    queued.refresh_from_db()
    assert queued.state == ActionRun.State.QUEUED and queued.due_at > timezone.now()
