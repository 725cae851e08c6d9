"""The watcher SIGKILLed while the cluster changes, then restarted; then two watchers at once.

Every change of a status tree is counted in the database itself (a trigger of the drill's own), so
the drill sees each write whichever watcher made it.
"""

import json
import time

import pytest
from django.db import connection

from deployments.models import Deployment, DeploymentStatus, Lease
from deployments.statuses import comparable
from tests.drills.convergence import wait_until_converged
from tests.drills.figures import record_figure
from tests.support import wait_for

RECORD_WRITES = """
CREATE TABLE drill_status_writes (
    id bigserial PRIMARY KEY, deployment_id bigint, health text, tree jsonb, backend integer,
    written_at timestamptz DEFAULT clock_timestamp()
);
CREATE FUNCTION drill_record_status_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO drill_status_writes (deployment_id, health, tree, backend)
    VALUES (NEW.deployment_id, NEW.health, NEW.tree, pg_backend_pid());
    RETURN NEW;
END $$;
CREATE TRIGGER drill_status_inserted AFTER INSERT ON deployments_deploymentstatus
    FOR EACH ROW EXECUTE FUNCTION drill_record_status_write();
CREATE TRIGGER drill_status_updated AFTER UPDATE ON deployments_deploymentstatus
    FOR EACH ROW WHEN (OLD.tree IS DISTINCT FROM NEW.tree) EXECUTE FUNCTION drill_record_status_write();
"""
FORGET_WRITES = """
DROP TRIGGER IF EXISTS drill_status_inserted ON deployments_deploymentstatus;
DROP TRIGGER IF EXISTS drill_status_updated ON deployments_deploymentstatus;
DROP FUNCTION IF EXISTS drill_record_status_write();
DROP TABLE IF EXISTS drill_status_writes;
"""


@pytest.fixture
def status_writes(drill_stack):
    """Each write that changes a status tree, as (deployment id, health, tree), oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(FORGET_WRITES)
        cursor.execute(RECORD_WRITES)

    def since(moment_id: int = 0) -> list[tuple[int, int, str, dict]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, deployment_id, health, tree FROM drill_status_writes WHERE id > %s ORDER BY id",
                [moment_id],
            )
            # Django reads jsonb through a raw cursor as text.
            return [(pk, deployment, health, json.loads(tree)) for pk, deployment, health, tree in cursor.fetchall()]

    yield since
    with connection.cursor() as cursor:
        cursor.execute(FORGET_WRITES)


def _changes(before: dict, after: dict) -> str:
    """Where two status trees differ, as path: before -> after (the ``since`` stamps left out)."""
    found = []

    def walk(path: str, a, b) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(f"{path}.{key}", a.get(key), b.get(key))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for index, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(f"{path}[{index}]", x, y)
        elif a != b:
            found.append(f"{path}: {a!r} -> {b!r}")

    walk("tree", comparable(before), comparable(after))
    return ", ".join(found) or "nothing but the since stamps"


def _health(deployment) -> str | None:
    return DeploymentStatus.objects.filter(deployment=deployment).values_list("health", flat=True).first()


def _healths(deployments) -> dict[str, str | None]:
    return {d.name: _health(d) for d in deployments}


# Each watcher's periodic pass over every deployment, shortened (10 s by default) so the drill
# can see several of them come and go without writing.
RECOMPUTE_SECONDS = 2


@pytest.mark.stack_env(STATUS_RECOMPUTE_SECONDS=str(RECOMPUTE_SECONDS))
def test_statuses_converge_from_the_relist_and_two_watchers_write_each_change_once(
    drill_stack, person, make_project, emulator, status_writes
):
    project = make_project("django-postgres")
    for number in range(4):
        person.create(project, f"steady-{number}")
    wait_until_converged(project, since=time.monotonic(), timeout=60, drill="setup", stack=drill_stack)
    crashed, later_crashed, other, _ = steady = list(Deployment.objects.filter(project=project).order_by("pk"))

    # The watcher dies; the cluster changes while nobody watches.
    drill_stack.kill("watcher")
    emulator.faults.crash(crashed.namespace)
    person.create(project, "while-unwatched")
    time.sleep(3)
    assert _health(crashed) == "green", "nobody watched, yet the status changed"
    drill_stack.restart("watcher")
    restarted = time.monotonic()
    unwatched = Deployment.objects.get(project=project, name="while-unwatched")
    expected = {d.name: "green" for d in [*steady, unwatched]} | {crashed.name: "red"}
    wait_for(
        lambda: _healths([*steady, unwatched]) == expected,
        timeout=30,
        interval=0.2,
        what=f"the statuses to converge after the restart ({_healths([*steady, unwatched])})",
    )
    record_figure(f"watcher SIGKILLed and restarted: statuses converged {time.monotonic() - restarted:.1f} s after")

    # Two watchers at once: each change is written once, in order, and nothing flaps.
    drill_stack.start_another("watcher2", like="watcher")
    wait_for(lambda: "Watching" in drill_stack.log("watcher2"), timeout=30, what="the second watcher")
    time.sleep(2)  # both have listed and recomputed everything
    mark = max((pk for pk, *_ in status_writes()), default=0)
    other_before = DeploymentStatus.objects.get(deployment=other).tree
    emulator.faults.heal(crashed.namespace)
    emulator.faults.crash(later_crashed.namespace)
    person.create(project, "with-two-watchers")
    added = Deployment.objects.get(project=project, name="with-two-watchers")
    expected = {d.name: "green" for d in [*steady, added]} | {later_crashed.name: "red"}
    changed = time.monotonic()
    wait_for(
        lambda: _healths([*steady, added]) == expected,
        timeout=30,
        interval=0.2,
        what=f"the statuses to converge with two watchers ({_healths([*steady, added])})",
    )
    converged = time.monotonic() - changed
    time.sleep(2 * RECOMPUTE_SECONDS + 1)  # full recomputes by each watcher come and go without writing
    writes = status_writes(mark)
    by_deployment: dict[int, list[tuple[str, dict]]] = {}
    for _, deployment_id, health, tree in writes:
        by_deployment.setdefault(deployment_id, []).append((health, tree))
    record_figure(
        f"two watchers: converged {converged:.1f} s after 3 changes; {len(writes)} status writes, each a change "
        f"({len(by_deployment.get(later_crashed.pk, []))} as the crash loop's restarts grew), none stale"
    )
    for deployment_id, sequence in by_deployment.items():
        trees = [json.dumps(comparable(tree), sort_keys=True) for _, tree in sequence]
        assert all(a != b for a, b in zip(trees, trees[1:], strict=False)), f"{deployment_id}: a write changed nothing"
        # A tree written again after another one: a watcher with an older view overwrote a newer one.
        assert len(set(trees)) == len(trees), f"deployment {deployment_id}: an older status came back"
        healths = [health for health, _ in sequence]
        reached = [h for i, h in enumerate(healths) if i == 0 or h != healths[i - 1]]
        assert len(reached) == len(set(reached)), f"deployment {deployment_id} flapped: {healths}"
    assert other.pk not in by_deployment, "a status that did not change was written: " + "; ".join(
        _changes(other_before, tree) for _, tree in by_deployment.get(other.pk, [])
    )
    assert {crashed.pk, later_crashed.pk, added.pk} <= set(by_deployment)
    for name in ("watcher", "watcher2"):
        assert drill_stack.processes[name].poll() is None, drill_stack.log(name)[-2000:]

    # The watcher writing the statuses dies: the other, standing by, takes over.
    holder_pid = Lease.objects.get(name="statuses").holder.split(":")[1]  # host:pid:object
    (writer,) = [name for name in ("watcher", "watcher2") if str(drill_stack.processes[name].pid) == holder_pid]
    drill_stack.kill(writer)
    emulator.faults.heal(later_crashed.namespace)
    killed = time.monotonic()
    wait_for(lambda: _health(later_crashed) == "green", timeout=30, interval=0.2, what="the standby to take over")
    record_figure(
        f"two watchers, the writing one SIGKILLed: the other took over, a status followed in "
        f"{time.monotonic() - killed:.1f} s"
    )
