"""Page cost: SQL queries and server time of the project page and the deployment Overview.

In this process, on PostgreSQL (database ``diploi_bench``), through Django's
test client (middleware, session, auth, view, template: everything but the
network), logged in as a team member:

- the project page (``/projects/<id>/``) of a project with 10 and with 1,000
  deployments of ``django-postgres`` (each with a status row, three activity
  entries; 90% green, 7% yellow, 3% red);
- the Overview tab (``/deployments/<id>/``) of a production deployment whose
  stored status tree was computed by ``cluster.status.compute_status`` from 5
  and from 50 pod objects shaped as the API server returns them (one with
  restarts, one crash-looping), with a day of CPU samples for its charts.

Figures: the number of SQL queries of one request (must not grow with the
rows), and the median and p95 server time of ``--requests`` requests after
warm-up (target: median under 50 ms).

    python -m benchmarks.page_queries [--quick] [--requests N] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from datetime import timedelta

from benchmarks import _common as bench


def seed_project(team, actor, *, slug: str, count: int):
    """A project with ``count`` deployments: the first through the service, the rest copied in bulk."""
    from django.utils import timezone

    from deployments import services
    from deployments.models import ActivityEntry, Deployment, DeploymentState, DeploymentStatus, Operation

    project = bench.make_project(team, "django-postgres", slug=slug)
    first = services.deployment_create(project=project, name="d0000", stage="production", actor=actor)
    copies = [
        Deployment(
            project=project,
            name=f"d{i:04d}",
            stage=("production", "staging", "development")[i % 3],
            branch="main",
            size="small",
            template_version_id=first.template_version_id,
            enabled_addons=first.enabled_addons,
            generated_secrets=first.generated_secrets,
            namespace=f"{slug}-d{i:04d}-{i:06x}",
            state=DeploymentState.RUNNING,
            desired_generation=1,
            applied_generation=1,
            created_by=actor,
        )
        for i in range(1, count)
    ]
    Deployment.objects.bulk_create(copies, batch_size=500)
    Deployment.objects.filter(pk=first.pk).update(state=DeploymentState.RUNNING, applied_generation=1)
    deployments = list(Deployment.objects.filter(project=project).order_by("pk"))
    now = timezone.now()
    # Every status row holds a real tree (what the watcher stores): two app pods and postgres.
    tree = observed_tree(first, 3)
    statuses, activity, operations = [], [], []
    for i, deployment in enumerate(deployments):
        health = "red" if i % 33 == 5 else "yellow" if i % 14 == 3 else "green"
        reason = {
            "green": "All services ready",
            "yellow": "postgres: 0/1 ready, rolling out",
            "red": "app: CrashLoopBackOff, 7 restarts, last exit 1 (Error)",
        }[health]
        statuses.append(
            DeploymentStatus(
                deployment=deployment,
                health=health,
                reason=reason,
                since=now - timedelta(minutes=i % 50),
                tree={**tree, "health": health, "reason": reason},
                observed_at=now,
                cpu_millicores=12.5 + i % 40,
                cpu_sampled_at=now,
            )
        )
        for k in range(3):
            activity.append(
                ActivityEntry(
                    team=team,
                    project=project,
                    deployment=deployment,
                    actor=actor,
                    action="deployment.restarted",
                    message="Restart of all services requested",
                    created_at=now - timedelta(hours=k + i % 24),
                )
            )
        if deployment.pk != first.pk:
            operations.append(
                Operation(
                    deployment=deployment,
                    kind=Operation.Kind.CREATE,
                    status=Operation.Status.SUCCEEDED,
                    requested_by=actor,
                    generation=1,
                    finished_at=now,
                    message="Applied 9 objects to the cluster",
                )
            )
    DeploymentStatus.objects.filter(deployment__project=project).delete()
    DeploymentStatus.objects.bulk_create(statuses, batch_size=500)
    ActivityEntry.objects.bulk_create(activity, batch_size=1000)
    Operation.objects.bulk_create(operations, batch_size=1000)
    Operation.objects.filter(deployment=first).update(status=Operation.Status.SUCCEEDED, finished_at=now)
    return project, deployments


def observation_for(deployment, pods: int, *, ready: bool = True):
    """What the watcher would observe of a django-postgres deployment with ``pods`` pods: app replicas
    (one with restarts, one crash-looping when there are more than 3) plus postgres, their workloads
    and claim. ``ready=False``: the first app pod is not ready."""
    from django.utils import timezone

    from deployments.cluster import labels as L
    from deployments.cluster.status import Observation

    now = timezone.now()
    created = now - timedelta(days=2)
    namespace = deployment.namespace

    def labels(service: str, kind: str) -> dict:
        return {
            **L.ownership(project=deployment.project.slug, deployment_id=deployment.pk, stage=deployment.stage),
            L.SERVICE: service,
            L.SERVICE_KIND: kind,
        }

    app_pods = [
        bench.pod_object(
            name=f"app-6f7c9d-{i:05d}",
            namespace=namespace,
            labels=labels("app", "component"),
            image="python:3.12-slim",
            created=created,
            ready=ready or i != 0,
            restarts=3 if i == 1 else 0,
            crash_looping=i == 2 and pods > 3,
            index=i,
        )
        for i in range(pods - 1)
    ]
    postgres = bench.pod_object(
        name="postgres-0",
        namespace=namespace,
        labels=labels("postgres", "addon"),
        image="postgres:16",
        created=created,
        index=pods,
    )
    stamp = created.isoformat()
    workloads = [
        {
            "kind": "Deployment",
            "metadata": {
                "name": "app",
                "namespace": namespace,
                "labels": labels("app", "component"),
                "generation": 3,
                "creationTimestamp": stamp,
            },
            "spec": {"replicas": pods - 1},
            "status": {
                "observedGeneration": 3,
                "replicas": pods - 1,
                "readyReplicas": pods - 2,
                "updatedReplicas": pods - 1,
                "availableReplicas": pods - 2,
            },
        },
        {
            "kind": "StatefulSet",
            "metadata": {
                "name": "postgres",
                "namespace": namespace,
                "labels": labels("postgres", "addon"),
                "generation": 1,
                "creationTimestamp": stamp,
            },
            "spec": {"replicas": 1},
            "status": {
                "observedGeneration": 1,
                "replicas": 1,
                "readyReplicas": 1,
                "currentRevision": "postgres-1",
                "updateRevision": "postgres-1",
            },
        },
    ]
    claims = [
        {
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": "data-postgres-0",
                "namespace": namespace,
                "labels": labels("postgres", "addon"),
                "creationTimestamp": stamp,
            },
            "spec": {"resources": {"requests": {"storage": "10Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}},
        }
    ]
    return Observation(
        namespace={
            "kind": "Namespace",
            "metadata": {"name": namespace, "creationTimestamp": stamp},
            "status": {"phase": "Active"},
        },
        pods=[*app_pods, postgres],
        workloads=workloads,
        claims=claims,
    )


def observed_tree(deployment, pods: int) -> dict:
    """The status tree ``compute_status`` gives for that observation."""
    from django.utils import timezone

    from deployments.cluster.connection import cluster_settings
    from deployments.cluster.status import compute_status

    observation = observation_for(deployment, pods)
    return compute_status(
        deployment.expectation(cluster_settings()), observation, now=timezone.now(), grace=timedelta(seconds=120)
    )


def seed_overview(deployment, pods: int) -> int:
    """Store the status of ``pods`` pods for ``deployment``, and a day of CPU history. Returns the pod count."""
    from django.utils import timezone

    from deployments.models import CpuSample, DeploymentStatus

    now = timezone.now()
    tree = observed_tree(deployment, pods)
    DeploymentStatus.objects.update_or_create(
        deployment=deployment,
        defaults={"tree": tree, "health": tree["health"], "reason": tree["reason"][:300], "observed_at": now},
    )
    # CPU history as the sampler keeps it: raw samples every 10 s (10 minutes), minutes (2 hours), quarters.
    CpuSample.objects.filter(deployment=deployment).delete()
    tiers = [
        # (tier, bucket width, buckets, mean millicores, samples per bucket)
        (CpuSample.Tier.RAW, timedelta(seconds=10), 60, 40.0, 1),
        (CpuSample.Tier.MINUTE, timedelta(minutes=1), 120, 45.0, 6),
        (CpuSample.Tier.QUARTER, timedelta(minutes=15), 192, 50.0, 90),
    ]
    CpuSample.objects.bulk_create(
        [
            CpuSample(
                deployment=deployment,
                tier=tier,
                bucket_start=now - width * i,
                total_millicores=(mean + i % 7) * count,
                count=count,
            )
            for tier, width, buckets, mean, count in tiers
            for i in range(buckets)
        ],
        ignore_conflicts=True,
    )
    return len(tree["nodes"]["containers"]["items"])


def measure(client, path: str, requests: int) -> tuple[int, list[float], int]:
    """(queries of one request, server times in ms, response size)."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    for _ in range(5):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    # The log is a bounded deque: once full (e.g. after migrating), a capture would count nothing.
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    # Read now: `captured_queries` slices the live log, which later requests reset.
    count = len(queries.captured_queries)
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        client.get(path)
        times.append((time.perf_counter() - start) * 1000)
    return count, times, len(response.content)


def split_project_page(project, user) -> str:
    """How the project page's time divides: fetching the rows vs rendering them."""
    from django.template.loader import render_to_string

    from deployments import selectors
    from deployments.access import project_for

    _, membership = project_for(user, project.pk)
    fetch, narrow, render = [], [], []
    shown = ("id", "project_id", "name", "stage", "state", "enabled")
    shown += ("status__health", "status__reason", "status__cpu_millicores")
    for _ in range(10):
        start = time.perf_counter()
        rows = list(selectors.deployments_of_project(project))
        fetch.append((time.perf_counter() - start) * 1000)
        # What-if (not Diploi's code): the same query loading only the columns the list shows.
        start = time.perf_counter()
        list(selectors.deployments_of_project(project).only(*shown))
        narrow.append((time.perf_counter() - start) * 1000)
        context = {"project": project, "deployments": rows, "can": selectors.Permissions.of(membership)}
        start = time.perf_counter()
        render_to_string("deployments/project_detail.html#deployment-list", context)
        render.append((time.perf_counter() - start) * 1000)
    return (
        f"fetching the {len(rows)} rows (deployments_of_project, status trees included): "
        f"{bench.median(fetch):.0f} ms (loading only the shown columns instead, with .only(): "
        f"{bench.median(narrow):.0f} ms); rendering the list partial: {bench.median(render):.0f} ms (medians)"
    )


def queries_of(client, path: str) -> list[str]:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        client.get(path)
        captured = list(queries.connection.queries_log)
    return [f"{float(q['time']) * 1000:6.1f} ms  {q['sql'][:150]}" for q in captured]


def profile(client, path: str) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(20):
        client.get(path)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(15)
    stats.sort_stats("cumulative").print_stats(r"deployments/|loader_tags|shortcuts", 20)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests per page (20)")
    parser.add_argument("--requests", type=int)
    parser.add_argument("--profile", action="store_true", help="print where the time of the big pages goes")
    args = parser.parse_args()
    requests = args.requests or (20 if args.quick else 50)

    bench.require_services()
    bench.banner("page_queries", "SQL queries and server time of the project page and the deployment Overview")
    bench.warn_if_busy(set())
    bench.setup_django(None)
    from django.test import Client

    team, users = bench.make_team_and_users(1)
    small, small_deployments = seed_project(team, users[0], slug="small", count=10)
    start = time.monotonic()
    big, big_deployments = seed_project(team, users[0], slug="big", count=1000)
    print(f"  seeded 1,000 deployments in {time.monotonic() - start:.1f}s")
    five, fifty = small_deployments[0], small_deployments[3]
    containers = {5: seed_overview(five, 5), 50: seed_overview(fifty, 50)}

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(users[0])
    pages = [
        ("project page, 10 deployments", f"/projects/{small.pk}/"),
        ("project page, 1,000 deployments", f"/projects/{big.pk}/"),
        (f"Overview, {containers[5]} containers", f"/deployments/{five.pk}/"),
        (f"Overview, {containers[50]} containers", f"/deployments/{fifty.pk}/"),
    ]
    results = {name: measure(client, path, requests) for name, path in pages}

    table = bench.Table(f"page_queries: PostgreSQL, Django test client, {requests} requests per page after warm-up")
    names = [name for name, _ in pages]
    for small_name, big_name in (names[:2], names[2:]):
        equal = results[small_name][0] == results[big_name][0]
        table.add(
            f"SQL queries: {small_name} / {big_name.split(', ')[1]}",
            f"{results[small_name][0]} / {results[big_name][0]}",
            "equal",
            equal,
        )
    for name in names:
        queries, times, size = results[name]
        fast = bench.median(times) < 50
        table.add(
            f"{name}: median / p95, ms ({size // 1024} KiB)",
            f"{bench.median(times):.1f} / {bench.percentile(times, 95):.1f}",
            "median < 50",
            fast,
        )
    table.print()
    if args.profile or table.missed:
        print("--- " + split_project_page(big, users[0]))
        for name, path in pages[1::2]:
            print(f"--- the SQL of {name}")
            print("\n".join(queries_of(client, path)))
            print(f"--- where the time of {name} goes (cProfile, 20 requests)")
            print(profile(client, path))
    raise SystemExit(1 if table.missed else 0)


if __name__ == "__main__":
    main()
