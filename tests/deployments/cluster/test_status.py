from datetime import timedelta

from deployments.cluster.status import Expectation, ExpectedService, Observation, compute_status, stale_status
from tests.deployments.cluster import objects as o

GRACE = timedelta(seconds=60)
EXPECT = Expectation(
    namespace="shop-dev-abc123",
    services=(
        ExpectedService("app", "Django", "component", 8000, ("app-dev.apps.example.com",)),
        ExpectedService("postgres", "PostgreSQL", "addon", 5432),
    ),
)


def healthy(**changes) -> Observation:
    observation = Observation(
        namespace=o.namespace(),
        pods=[o.pod("app-0", "app"), o.pod("postgres-0", "postgres", kind="addon")],
        claims=[o.claim("code-app-0", "app", kind="component"), o.claim("data-postgres-0", "postgres")],
        workloads=[o.statefulset("app"), o.statefulset("postgres", kind="addon")],
        certificates=[o.certificate("app-dev.apps.example.com")],
    )
    for key, value in changes.items():
        setattr(observation, key, value)
    return observation


def status(observation: Observation, expect: Expectation = EXPECT, previous=None, now=o.NOW) -> dict:
    return compute_status(expect, observation, now=now, grace=GRACE, previous=previous)


def test_it_is_green_when_everything_runs():
    tree = status(healthy())
    assert (tree["health"], tree["reason"]) == ("green", "All services ready")
    assert [tree["nodes"][n]["health"] for n in ("storage", "builds", "containers", "services")] == ["green"] * 4
    services = {item["key"]: item for item in tree["nodes"]["services"]["items"]}
    assert services["app"]["endpoint"] == "https://app-dev.apps.example.com"
    assert services["postgres"]["endpoint"] == "postgres:5432 (internal)"
    assert tree["tls"] == {"app-dev.apps.example.com": "issued"}
    assert tree["nodes"]["builds"]["items"] == []


def test_it_is_red_with_a_readable_reason_when_the_app_crash_loops():
    crashing = o.pod(
        "app-0",
        "app",
        ready=False,
        containers=[o.container("app", state=o.waiting("CrashLoopBackOff"), ready=False, restarts=5, last_exit=1)],
    )
    tree = status(
        healthy(
            pods=[crashing, o.pod("postgres-0", "postgres", kind="addon")],
            workloads=[o.statefulset("app", ready=0), o.statefulset("postgres", kind="addon")],
        )
    )
    assert tree["health"] == "red"
    assert tree["reason"] == "app: CrashLoopBackOff, 5 restarts, last exit 1 (Error)"
    containers = tree["nodes"]["containers"]["items"]
    assert containers[0]["restarts"] == 5 and containers[0]["health"] == "red"


def test_it_does_not_flash_red_while_a_new_pod_starts():
    starting = o.pod(
        "app-0",
        "app",
        ready=False,
        created=o.FRESH,
        containers=[o.container("app", state=o.waiting("CrashLoopBackOff"), ready=False, restarts=1, last_exit=1)],
    )
    tree = status(
        healthy(
            pods=[starting, o.pod("postgres-0", "postgres", kind="addon")],
            workloads=[o.statefulset("app", ready=0, created=o.FRESH), o.statefulset("postgres", kind="addon")],
        )
    )
    assert tree["health"] == "yellow"


def test_it_is_red_when_no_pod_is_ready_behind_a_public_endpoint_past_the_grace_period():
    stuck = o.pod(
        "app-0",
        "app",
        ready=False,
        phase="Pending",
        containers=[o.container("app", state=o.waiting("ContainerCreating"), ready=False)],
    )
    tree = status(
        healthy(
            pods=[stuck, o.pod("postgres-0", "postgres", kind="addon")],
            workloads=[o.statefulset("app", ready=0), o.statefulset("postgres", kind="addon")],
        )
    )
    assert tree["health"] == "red"
    assert tree["reason"].startswith("Django down: app-0: not ready")


def test_it_is_only_yellow_when_an_internal_addon_is_down():
    down = o.pod(
        "postgres-0",
        "postgres",
        ready=False,
        kind="addon",
        containers=[o.container("postgres", state=o.waiting("CrashLoopBackOff"), ready=False, restarts=3, last_exit=1)],
    )
    tree = status(
        healthy(
            pods=[o.pod("app-0", "app"), down],
            workloads=[o.statefulset("app"), o.statefulset("postgres", kind="addon", ready=0)],
        )
    )
    assert tree["health"] == "yellow"
    assert "postgres: CrashLoopBackOff" in tree["reason"]


def test_it_is_yellow_while_storage_is_pending_and_red_when_it_is_lost():
    pending = status(healthy(claims=[o.claim("data-postgres-0", "postgres", phase="Pending", created=o.FRESH)]))
    assert pending["nodes"]["storage"]["health"] == "progress"
    assert pending["health"] == "progress"
    assert "waiting for a volume" in pending["reason"]
    stuck = status(healthy(claims=[o.claim("data-postgres-0", "postgres", phase="Pending")]))
    assert (stuck["health"], stuck["reason"]) == ("yellow", "data-postgres-0 (5Gi) still waiting for a volume")
    lost = status(healthy(claims=[o.claim("data-postgres-0", "postgres", phase="Lost")]))
    assert lost["health"] == "red"
    assert lost["reason"] == "data-postgres-0 (5Gi) lost its volume"


def test_it_is_red_when_the_namespace_is_missing():
    tree = status(Observation())
    assert tree["health"] == "red"
    assert tree["reason"] == "The namespace shop-dev-abc123 is missing from the cluster"


def test_it_is_progress_and_says_creating_before_the_first_apply():
    expect = Expectation(namespace=EXPECT.namespace, services=EXPECT.services, applied=False)
    tree = status(Observation(), expect=expect)
    assert (tree["health"], tree["reason"]) == ("progress", "Creating: applying the deployment to the cluster")


def test_it_is_yellow_when_a_rollout_is_still_in_progress_past_the_grace_period():
    workloads = [o.deployment("app", replicas=2, ready=1, updated=1), o.statefulset("postgres", kind="addon")]
    pods = [
        o.pod("app-a", "app"),
        o.pod(
            "app-b",
            "app",
            ready=False,
            containers=[o.container("app", state=o.waiting("ContainerCreating"), ready=False)],
        ),
        o.pod("postgres-0", "postgres", kind="addon"),
    ]
    tree = status(healthy(workloads=workloads, pods=pods))
    assert tree["health"] == "yellow"


def test_it_reports_a_restarting_container_that_still_serves_as_green_container_history():
    pods = [
        o.pod(
            "app-0",
            "app",
            containers=[
                o.container("app", state=o.running(), ready=True, restarts=2, last_exit=137, last_reason="OOMKilled")
            ],
        ),
        o.pod("postgres-0", "postgres", kind="addon"),
    ]
    tree = status(healthy(pods=pods))
    item = tree["nodes"]["containers"]["items"][0]
    assert item["restarts"] == 2
    assert item["containers"][0]["last_termination"] == "last exit 137 (OOMKilled)"


def test_it_keeps_since_while_nothing_changes_and_resets_it_when_something_does():
    first = status(healthy(), now=o.NOW)
    later = status(healthy(), previous=first, now=o.NOW + timedelta(minutes=5))
    assert later["since"] == first["since"] == o.NOW.isoformat()
    assert later["nodes"]["services"]["items"][0]["since"] == o.NOW.isoformat()
    crashing = o.pod(
        "app-0",
        "app",
        ready=False,
        containers=[o.container("app", state=o.waiting("CrashLoopBackOff"), ready=False, restarts=5, last_exit=1)],
    )
    changed_at = o.NOW + timedelta(minutes=6)
    broken = status(
        healthy(
            pods=[crashing, o.pod("postgres-0", "postgres", kind="addon")],
            workloads=[o.statefulset("app", ready=0), o.statefulset("postgres", kind="addon")],
        ),
        previous=later,
        now=changed_at,
    )
    assert broken["since"] == changed_at.isoformat()
    assert broken["nodes"]["storage"]["since"] == o.NOW.isoformat()
    # Still red after more restarts: red since the first crash, though the reason changed.
    more = o.pod(
        "app-0",
        "app",
        ready=False,
        containers=[o.container("app", state=o.waiting("CrashLoopBackOff"), ready=False, restarts=9, last_exit=1)],
    )
    still = status(
        healthy(
            pods=[more, o.pod("postgres-0", "postgres", kind="addon")],
            workloads=[o.statefulset("app", ready=0), o.statefulset("postgres", kind="addon")],
        ),
        previous=broken,
        now=changed_at + timedelta(minutes=3),
    )
    assert "9 restarts" in still["reason"] and still["since"] == changed_at.isoformat()


def test_it_reports_certificates_that_failed():
    tree = status(
        healthy(
            certificates=[
                o.certificate("shop.example.org", ready="False", reason="Failed", message="DNS record not found")
            ]
        )
    )
    assert tree["tls"]["shop.example.org"] == "failed: DNS record not found"


def test_it_turns_unknown_when_the_cluster_is_out_of_reach_saying_since_when():
    previous = status(healthy())
    since = o.NOW - timedelta(minutes=2)
    tree = stale_status(previous, since=since, error="connection refused", now=o.NOW)
    assert tree["health"] == "unknown"
    assert tree["reason"] == f"Unknown since {since:%H:%M:%S} UTC: connection refused"
    assert tree["nodes"] == previous["nodes"]


def test_it_says_the_day_when_the_cluster_has_been_out_of_reach_since_another_day():
    since = o.NOW - timedelta(days=1)
    tree = stale_status(status(healthy()), since=since, error="The Kubernetes API is unavailable (500)", now=o.NOW)
    assert tree["reason"] == f"Unknown since {since:%Y-%m-%d %H:%M} UTC: The Kubernetes API is unavailable (500)"


def test_it_keeps_when_it_turned_unknown_while_the_reason_changes():
    first = stale_status(status(healthy()), since=o.NOW, error="unavailable (500)", now=o.NOW)
    later = o.NOW + timedelta(minutes=1)
    again = stale_status(first, since=o.NOW, error="throttling (429)", now=later)
    assert again["since"] == first["since"] == o.NOW.isoformat()
    assert again["reason"].endswith("throttling (429)")


def _without_the_app() -> Observation:
    return healthy(
        pods=[o.pod("postgres-0", "postgres", kind="addon")], workloads=[o.statefulset("postgres", kind="addon")]
    )


def test_a_component_waiting_for_its_first_build_is_yellow_not_missing():
    from dataclasses import replace

    app = replace(EXPECT.services[0], awaiting_build=True)
    tree = status(_without_the_app(), replace(EXPECT, services=(app, EXPECT.services[1])))
    item = next(i for i in tree["nodes"]["services"]["items"] if i["key"] == "app")
    assert (item["health"], item["reason"]) == ("yellow", "Django: waiting for the first build")
    assert (tree["health"], tree["reason"]) == ("yellow", "Django: waiting for the first build")


def test_a_workload_not_applied_yet_is_coming_and_one_that_should_be_there_is_missing():
    from dataclasses import replace

    coming = status(_without_the_app(), replace(EXPECT, up_to_date=False))  # a rollout waits for its apply
    assert coming["nodes"]["services"]["health"] == "progress"
    assert "Django: being created" in coming["nodes"]["services"]["reason"]
    missing = status(_without_the_app())
    assert missing["health"] == "red" and "Django: missing from the cluster" in missing["reason"]
