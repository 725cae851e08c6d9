"""Status honesty: false red (and false "Degraded") over a churn of normal operations, no fault injected.

Setup as the propagation benchmark's: N deployments (default 50) of the shipped
``static-nginx`` template, staging, applied with ``lifecycle.reconcile_run``, live in
the cluster emulator (its own process), Diploi's ``watch_cluster`` as a process on
PostgreSQL and Redis with the shipped status settings (STATUS_GRACE_SECONDS 120).

Churn for ``--duration`` seconds, one action every ``--pause`` seconds on a random
deployment, through the services users call and what the worker's tasks call:
restarts, environment changes, disable, enable, deletes (and creates keeping the
population steady), and builds of a new commit rolling out (reported as an external CI does;
staging runs only what was built). No fault is injected, so any red is a false red.

Measured: every stored status is read every 0.2 s; a deployment seen red counts one
false red per red spell, a deployment seen yellow one false "Degraded" spell. Also:
operations that did not succeed, and the highest attempts of any operation.

    python -m benchmarks.false_red --quick            # 20 deployments, 60 s
    python -m benchmarks.false_red --duration 3600    # the scripted hour of issue 14
"""

from __future__ import annotations

import argparse
import itertools
import random
import threading
import time

from benchmarks import _common as bench

COMMIT, DIGEST = "c" * 40, "sha256:" + "b" * 64


def built(deployment, commit: str = COMMIT, digest: str = DIGEST):
    """Staging runs nothing until its components are built: report them built, as an external CI
    does through the build services (the rollout records the images as desired state)."""
    from django.test import override_settings

    from deployments.builds import services as builds

    with override_settings(BUILD_RUNNER="external"):
        for build in builds.builds_request(deployment=deployment, trigger="api", commit_sha=commit):
            builds.build_succeeded(build_id=build.pk, digest=digest)
    return deployment


class Churn(bench.ChurnLoop):
    """Normal operations at random, as users ask for them; each applied as the worker would."""

    def __init__(self, project, actor, deployments: list, *, pause: float):
        super().__init__(pause=pause)
        self.project, self.actor = project, actor
        self.live = {d.pk: d for d in deployments}
        self.target = len(deployments)
        self.names = itertools.count(len(deployments))
        self.counts = dict.fromkeys(("restart", "env", "disable", "enable", "create", "delete", "build"), 0)

    def step(self) -> None:
        from deployments import services
        from deployments.lifecycle import reconcile_run
        from deployments.models import Deployment

        action = random.choices(list(self.counts), weights=[3, 3, 1, 1, 1, 1, 2])[0]
        if action == "create" and len(self.live) >= self.target + 3:
            action = "delete"
        if action == "delete" and len(self.live) <= self.target - 3:
            action = "create"
        deployment = Deployment.objects.get(pk=random.choice(list(self.live)))
        if action == "create":
            deployment = built(
                services.deployment_create(
                    project=self.project, name=f"c{next(self.names):05d}", stage="staging", actor=self.actor
                )
            )
            self.live[deployment.pk] = deployment
        elif action == "delete":
            self.live.pop(deployment.pk)
            operation = services.deployment_delete(deployment=deployment, actor=self.actor)
            self.delete_later(operation.pk)
        elif action == "build":
            # A push built by CI: a new commit's image rolls out (the build's own effect on health included).
            built(deployment, commit=f"{random.getrandbits(160):040x}", digest=f"sha256:{random.getrandbits(256):064x}")
        elif action == "restart":
            services.deployment_restart(deployment=deployment, actor=self.actor)
        elif action == "env":
            services.deployment_update(
                deployment=deployment, actor=self.actor, env_overrides={"web": {"CHURN": str(random.random())}}
            )
        else:
            services.deployment_update(deployment=deployment, actor=self.actor, enabled=action == "enable")
        if action != "delete":
            reconcile_run(deployment.pk, owner="bench-churn")
        self.counts[action] += 1


class Observer:
    """Reads every status every 0.2 s and counts red and yellow spells per deployment."""

    def __init__(self):
        self.spells = {"red": 0, "yellow": 0}
        self.examples: dict[str, list[str]] = {"red": [], "yellow": []}
        self.reads = 0
        self.stop = threading.Event()
        self._last: dict[int, str] = {}

    def run(self) -> None:
        from django.db import connections

        from deployments.models import DeploymentStatus

        try:
            while not self.stop.wait(0.2):
                rows = DeploymentStatus.objects.exclude(deployment__state="deleted").values_list(
                    "deployment_id", "health", "reason"
                )
                for deployment_id, health, reason in rows:
                    if health in self.spells and self._last.get(deployment_id) != health:
                        self.spells[health] += 1
                        if len(self.examples[health]) < 5:
                            self.examples[health].append(f"{deployment_id}: {reason}")
                    self._last[deployment_id] = health
                self.reads += 1
        finally:
            connections.close_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 deployments, 60 s of churn")
    parser.add_argument("--deployments", type=int, help="deployments (default 50)")
    parser.add_argument("--duration", type=float, help="seconds of churn (default 180)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between churn actions")
    bench.add_env_option(parser)
    args = parser.parse_args()
    args.deployments = args.deployments or (20 if args.quick else 50)
    args.duration = args.duration or (60 if args.quick else 180)

    bench.require_services()
    bench.banner(
        "false_red",
        f"""{args.deployments} static-nginx deployments, watch_cluster as a process, the shipped status settings.
{args.duration:.0f} s of churn (restarts, environment changes, disable, enable, deletes and creates), no fault
injected; every status read every 0.2 s: red and yellow spells counted.""",
    )
    emulator = bench.EmulatorProcess()
    watcher = None
    table = bench.Table("status honesty over normal operations")
    try:
        bench.setup_django(emulator.url)
        team, users = bench.make_team_and_users(1)
        project = bench.make_project(team, "static-nginx")
        deployments = [built(d) for d in bench.create_deployments(project, args.deployments, actor=users[0])]
        bench.flush_redis()  # no worker runs here: the churn applies directly, as the worker's task would
        ids = [d.pk for d in deployments]
        bench.reconcile_all(ids)
        env = bench.base_env(emulator.url, **bench.env_dict(args))
        watcher = bench.start_watcher(env)
        bench.wait_all_green(ids)
        bench.warn_if_busy({emulator.pid, watcher.pid})

        churn, observer = Churn(project, users[0], deployments, pause=args.pause), Observer()
        threads = [threading.Thread(target=churn.run, daemon=True), threading.Thread(target=observer.run, daemon=True)]
        for thread in threads:
            thread.start()
        time.sleep(args.duration)
        churn.stop.set()
        threads[0].join(120)
        time.sleep(15)  # the last operations settle
        observer.stop.set()
        threads[1].join(10)

        from deployments.models import Operation

        operations = Operation.objects.exclude(kind="delete_storage")
        # A change or restart still queued when the churn deleted its deployment is never applied
        # (lifecycle.delete_run says so on it): the user's own delete superseded it, nothing failed.
        from deployments.lifecycle import SUPERSEDED_BY_DELETE

        superseded = operations.filter(status=Operation.Status.FAILED, message=SUPERSEDED_BY_DELETE)
        not_succeeded = operations.exclude(status=Operation.Status.SUCCEEDED).count() - superseded.count()
        most_attempts = max(operations.values_list("attempts", flat=True), default=0)
        print(f"  churn: {churn.counts}" + (f"; errors: {churn.errors[:3]}" if churn.errors else ""))
        for colour in ("red", "yellow"):
            for example in observer.examples[colour]:
                print(f"  {colour}: {example}")
        table.add(
            "churn actions (restart/env/disable/enable/create/delete/build)", "/".join(map(str, churn.counts.values()))
        )
        table.add("status reads (every 0.2 s, all deployments)", str(observer.reads))
        table.add("false red spells", str(observer.spells["red"]), "0", observer.spells["red"] == 0)
        yellow = observer.spells["yellow"]
        table.add("yellow (Degraded) spells, no fault", str(yellow), "0", yellow == 0)
        table.add("operations not succeeded", str(not_succeeded), "0", not_succeeded == 0)
        table.add("  superseded by the deployment's delete (not counted above)", str(superseded.count()))
        table.add("most attempts of one operation", str(most_attempts), "1", most_attempts == 1)
        table.add("churn errors", str(len(churn.errors)), "0", not churn.errors)
    finally:
        if watcher is not None:
            watcher.stop()
        emulator.stop()
    table.print()
    raise SystemExit(1 if table.missed else 0)


if __name__ == "__main__":
    main()
