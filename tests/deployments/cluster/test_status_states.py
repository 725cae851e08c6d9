"""The state table of docs/architecture.md ("A status that never lies"), row by row, from recorded
objects, and each transition both ways. Pure: `compute_status` on objects shaped as the API returns them."""

from dataclasses import replace
from datetime import timedelta

import pytest

from deployments.cluster import status as S
from deployments.cluster.status import Expectation, ExpectedService, Intent, Observation, compute_status
from tests.deployments.cluster import objects as o

GRACE = timedelta(seconds=60)
GEN = 5
APP = ExpectedService("app", "Django", "component", 8000, ("app.apps.example.com",), replicas=2, image="django:1")
DB = ExpectedService("postgres", "PostgreSQL", "addon", 5432, image="postgres:17")
EXPECT = Expectation(
    namespace="shop-dev-abc123",
    services=(APP, DB),
    generation=GEN,
    size="Large",
    size_cpu="2 CPU",
    size_memory="4 GiB",
    memory_limit="4 GiB",
)


def asked(kind: str, *, seconds: int = 20, target: str = "", summary: str = "") -> Intent:
    return Intent(kind=kind, started=o.NOW - timedelta(seconds=seconds), target=target, actor="ana", summary=summary)


def expecting(**changes) -> Expectation:
    return replace(EXPECT, **changes)


def db_pod(**kwargs):
    return o.pod("postgres-0", "postgres", kind="addon", **kwargs)


def db_set(**kwargs):
    return o.statefulset("postgres", kind="addon", ours=GEN, **kwargs)


def serving(**kwargs):
    """The app's Deployment with two replicas, rolled out from our generation."""
    return o.deployment("app", **{"replicas": 2, "ready": 2, "ours": GEN, **kwargs})


def observed(app_pods=None, *, app=None, db=None, pods_of_db=None, claims=None, namespace=None) -> Observation:
    return Observation(
        namespace=namespace or o.namespace(),
        pods=[
            *(app_pods if app_pods is not None else [o.pod("app-a", "app"), o.pod("app-b", "app")]),
            *(pods_of_db if pods_of_db is not None else [db_pod()]),
        ],
        claims=claims if claims is not None else [o.claim("data-postgres-0", "postgres")],
        workloads=[w for w in (app if app is not None else serving(), db if db is not None else db_set()) if w],
    )


def status(observation: Observation, expect: Expectation = EXPECT, *, now=o.NOW, previous=None) -> dict:
    return compute_status(expect, observation, now=now, grace=GRACE, previous=previous)


def service(tree: dict, key: str) -> dict:
    return next(item for item in tree["nodes"]["services"]["items"] if item["key"] == key)


def crashing(name: str, *, created=o.OLD, restarts=5) -> dict:
    app = o.container("app", state=o.waiting("CrashLoopBackOff"), ready=False, restarts=restarts, last_exit=1)
    return o.pod(name, "app", ready=False, created=created, containers=[app])


def starting(name: str, *, created=o.FRESH) -> dict:
    app = o.container("app", state=o.waiting("ContainerCreating"), ready=False)
    return o.pod(name, "app", ready=False, phase="Pending", created=created, containers=[app])


# ----------------------------------------------------------------------------- rows


def test_row_everything_rolled_out_and_ready_is_green_and_settled():
    tree = status(observed())
    assert (tree["health"], tree["reason"]) == ("green", "All services ready")
    assert tree["settled"] and tree["generation"] == GEN
    assert service(tree, "app")["reason"] == "Django: 2/2 ready"


def test_row_creating_before_the_namespace_exists_is_progress_then_yellow_past_the_grace():
    expect = expecting(applied=False, intent=asked(S.CREATE))
    tree = status(Observation(), expect)
    assert tree["health"] == "progress"
    assert tree["reason"] == "Creating, asked by ana 20 s ago: applying the deployment to the cluster"
    late = status(Observation(), expecting(applied=False, intent=asked(S.CREATE, seconds=300)))
    assert late["health"] == "yellow" and "longer than expected" in late["reason"]
    assert not tree["settled"]


def test_row_created_pods_still_starting_is_progress_never_degraded():
    app = o.deployment("app", replicas=2, ready=0, updated=2, created=o.FRESH, ours=GEN)
    tree = status(observed([starting("app-a"), starting("app-b")], app=app), expecting(intent=asked(S.CREATE)))
    assert tree["health"] == "progress"
    assert tree["reason"] == "Creating, asked by ana 20 s ago: Django 0 of 2 new pods available"
    assert tree["nodes"]["containers"]["health"] == "progress"
    assert not tree["settled"]


def test_row_a_change_rolling_out_while_old_pods_serve_is_progress_as_kubectl_decides():
    # The new ReplicaSet's pods are up; one old pod still runs: kubectl says "1 old replicas are pending termination".
    app = serving(updated=2, total=3)
    pods = [
        o.pod("app-new-a", "app", created=o.FRESH),
        o.pod("app-new-b", "app", created=o.FRESH),
        o.pod("app-old", "app"),
    ]
    intent = asked(S.CHANGE, summary="Environment variables changed")
    tree = status(observed(pods, app=app), expecting(intent=intent))
    assert tree["health"] == "progress"
    assert tree["reason"] == (
        "Applying changes (Environment variables changed), asked by ana 20 s ago: Django 1 old pod still to stop"
    )
    assert not tree["settled"]


def test_row_a_rollout_with_nobody_asking_is_not_green_while_old_replicas_are_pending():
    # The case: a new pod crash-loops while the old one serves; it used to say green "1/1 ready".
    app = o.deployment("app", replicas=1, ready=1, updated=1, total=2, ours=GEN)
    pods = [o.pod("app-old", "app"), crashing("app-new", restarts=4)]
    tree = status(observed(pods, app=app), expecting(services=(replace(APP, replicas=1), DB)))
    assert tree["health"] == "yellow"
    assert (
        service(tree, "app")["reason"] == "app: CrashLoopBackOff, 4 restarts, last exit 1 (Error); 1 of 1 still serving"
    )


def test_row_a_change_not_yet_in_the_cluster_is_progress_not_green():
    # The workload still carries the previous generation: the cluster has not got our change yet.
    tree = status(observed(app=serving(ours=GEN - 1)), expecting(intent=asked(S.CHANGE)))
    assert tree["health"] == "progress" and tree["reason"].endswith("Django applying")
    assert not tree["settled"]


def test_row_restarting_says_who_asked_and_how_many_pods_were_replaced():
    app = serving(updated=1, total=3)
    pods = [
        o.pod("app-new-a", "app", created=o.FRESH),
        o.pod("app-old-a", "app"),
        o.pod("app-old-b", "app", deleting=True),
    ]
    tree = status(observed(pods, app=app), expecting(intent=asked(S.RESTART, target="app")))
    assert (tree["health"], tree["reason"]) == (
        "progress",
        "Restarting Django, asked by ana 20 s ago: 1 of 2 pods replaced",
    )
    assert tree["nodes"]["containers"]["health"] == "progress"
    stopping = next(p for p in tree["nodes"]["containers"]["items"] if p["key"] == "app-old-b")
    assert (stopping["health"], stopping["reason"]) == ("progress", "app-old-b: stopping")


def test_row_restarting_a_single_pod_is_never_red_while_it_stops():
    # The case: "Failing · Django down: app-0: stopping" during a restart of a development pod.
    one = replace(APP, replicas=1)
    app = o.statefulset("app", ready=0, rolling=True, ours=GEN)
    tree = status(
        observed([o.pod("app-0", "app", deleting=True)], app=app),
        expecting(services=(one, DB), intent=asked(S.RESTART)),
    )
    assert (tree["health"], tree["reason"]) == (
        "progress",
        "Restarting all services, asked by ana 20 s ago: Django 0 of 1 pods replaced",
    )


def test_row_an_operation_past_its_grace_without_a_fault_is_yellow_saying_so():
    app = serving(updated=1, total=3)
    pods = [o.pod("app-new-a", "app"), o.pod("app-old-a", "app"), o.pod("app-old-b", "app", deleting=True)]
    tree = status(observed(pods, app=app), expecting(intent=asked(S.RESTART, target="app", seconds=600)))
    assert tree["health"] == "yellow"
    assert tree["reason"] == "Restarting Django, asked by ana 10 min ago: 1 of 2 pods replaced (longer than expected)"


@pytest.mark.parametrize(
    ("pod", "reason"),
    [
        (crashing("app-a"), "app: CrashLoopBackOff, 5 restarts, last exit 1 (Error)"),
        (
            o.pod(
                "app-a",
                "app",
                ready=False,
                phase="Pending",
                containers=[o.container("app", state=o.waiting("ImagePullBackOff"), ready=False)],
            ),
            "app: ImagePullBackOff: the image registry refused the pull of app:latest: check REGISTRY credentials",
        ),
        (
            o.pod(
                "app-a",
                "app",
                ready=False,
                phase="Pending",
                containers=[],
                conditions=[
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes are available: 1 Insufficient cpu.",
                    }
                ],
            ),
            "app-a: FailedScheduling: 0/1 nodes have enough CPU: the Large size needs 2 CPU; "
            "pick a smaller size or ask your operator",
        ),
        (
            o.pod(
                "app-a",
                "app",
                ready=False,
                containers=[
                    o.container(
                        "app", state=o.running(o.FRESH), ready=False, restarts=3, last_exit=137, last_reason="OOMKilled"
                    )
                ],
            ),
            "app: OOMKilled: used more than its 4 GiB limit (last of 3 restarts); pick a larger size",
        ),
        (
            o.pod(
                "app-a",
                "app",
                ready=False,
                phase="Pending",
                containers=[o.container("app", state=o.waiting("PodInitializing"), ready=False)],
                init=[
                    o.container("clone", state=o.waiting("CrashLoopBackOff"), ready=False, restarts=2, last_exit=128)
                ],
            ),
            "app-a: Init: git clone failed: repository not found or no access (2 attempts); "
            "check the project's repository, the branch and its credentials",
        ),
    ],
    ids=["crash-loop", "image-pull", "unschedulable", "oom", "clone-failed"],
)
def test_row_a_fault_the_cluster_reports_is_red_past_the_grace_with_nothing_serving_even_during_an_operation(
    pod, reason
):
    app = o.deployment("app", replicas=1, ready=0, updated=1, ours=GEN)
    expect = expecting(services=(replace(APP, replicas=1), DB), intent=asked(S.CHANGE, seconds=30))
    tree = status(observed([pod], app=app), expect)
    assert (tree["health"], tree["reason"]) == ("red", reason)
    # The same fault on a pod still inside its grace period: yellow, and the reason already.
    young = {**pod, "metadata": {**pod["metadata"], "creationTimestamp": o.FRESH}}
    early = status(observed([young], app=app), expect)
    assert (early["health"], early["reason"]) == ("yellow", reason)


def test_row_no_ready_pod_behind_a_public_endpoint_with_nobody_asking_is_red():
    app = serving(ready=0)
    pods = [starting("app-a", created=o.OLD), starting("app-b", created=o.OLD)]
    tree = status(observed(pods, app=app))
    assert tree["health"] == "red"
    assert tree["reason"] == "Django down: app-a: not ready (ContainerCreating)"


def test_row_an_internal_add_on_down_is_yellow():
    down = db_pod(
        ready=False,
        containers=[o.container("postgres", state=o.waiting("CrashLoopBackOff"), ready=False, restarts=3, last_exit=1)],
    )
    tree = status(observed(pods_of_db=[down], db=db_set(ready=0)))
    assert tree["health"] == "yellow" and tree["reason"].startswith("postgres: CrashLoopBackOff")


def test_row_disabling_while_pods_stop_is_progress_and_disabled_once_nothing_runs():
    expect = expecting(enabled=False, intent=asked(S.DISABLE, seconds=5))
    app = serving(replicas=0, ready=0)
    stopping = [o.pod("app-a", "app", deleting=True), o.pod("app-b", "app", deleting=True)]
    tree = status(
        observed(stopping, app=app, pods_of_db=[db_pod(deleting=True)], db=db_set(replicas=0, ready=0)), expect
    )
    assert tree["health"] == "progress"
    assert tree["reason"] == "Disabling, asked by ana just now: Django 2 pods stopping"
    assert not tree["settled"]
    done = status(observed([], app=app, pods_of_db=[], db=db_set(replicas=0, ready=0)), replace(expect, intent=None))
    assert (done["health"], done["reason"]) == (
        "disabled",
        "Disabled: nothing runs; enable it in Options to start it again",
    )
    assert done["nodes"]["containers"] == {
        **done["nodes"]["containers"],
        "health": "disabled",
        "reason": "Nothing runs: the deployment is disabled",
    }
    assert done["nodes"]["storage"]["health"] == "green"  # the volumes are kept
    assert done["settled"]


def test_row_disabled_in_the_desired_state_but_pods_still_running_is_not_disabled_yet():
    # The case: "Disabled: scaled to zero" was shown from the desired state while pods still ran.
    expect = expecting(enabled=False, intent=asked(S.DISABLE, seconds=5))
    tree = status(observed(app=serving(ours=GEN - 1)), expect)
    assert tree["health"] == "progress" and tree["reason"].endswith("Django 2 pods to stop")


def test_row_enabling_is_progress_until_the_pods_are_ready():
    app = o.deployment("app", replicas=2, ready=0, updated=2, ours=GEN)
    tree = status(observed([starting("app-a"), starting("app-b")], app=app), expecting(intent=asked(S.ENABLE)))
    assert tree["health"] == "progress" and tree["reason"].startswith("Enabling, asked by ana 20 s ago: Django")


def test_row_deleting_says_what_it_waits_for_and_is_never_red():
    expect = expecting(deleting=True, intent=asked(S.DELETE))
    terminating = o.namespace("Terminating")
    claims = [o.claim("data-postgres-0", "postgres", deleting=True), o.claim("code-app-0", "app", kind="component")]
    tree = status(observed([crashing("app-a")], namespace=terminating, claims=claims), expect)
    assert tree["health"] == "progress"
    assert tree["reason"] == "Deleting, asked by ana 20 s ago: waiting for 2 pods to stop and 2 volumes to be released"
    assert {item["health"] for item in tree["nodes"]["services"]["items"]} == {"progress"}
    assert tree["nodes"]["storage"]["health"] == "progress"
    only_volumes = Observation(namespace=terminating, claims=claims)
    assert status(only_volumes, expect)["reason"].endswith("waiting for 2 volumes to be released")
    gone = status(Observation(), expect)
    assert gone["health"] == "progress" and "namespace" not in gone["reason"]
    late = status(Observation(namespace=terminating), replace(expect, intent=asked(S.DELETE, seconds=600)))
    assert late["health"] == "yellow"
    assert (
        late["reason"]
        == "Deleting, asked by ana 10 min ago: still waiting for the namespace shop-dev-abc123 to go away"
    )


def test_row_a_workload_scaled_to_zero_by_hand_is_drift_and_red_when_nothing_serves_a_public_host():
    tree = status(observed([], app=serving(replicas=0, ready=0)))
    assert tree["health"] == "red"
    assert tree["reason"] == "Django: drift: scaled to 0 by hand (Diploi runs 2)"
    partly = status(observed([o.pod("app-a", "app")], app=serving(replicas=1, ready=1)))
    assert partly["health"] == "yellow" and "scaled to 1 by hand" in partly["reason"]


def test_row_an_image_changed_by_hand_is_drift():
    tree = status(observed(app=serving(image="django:evil")))
    assert tree["health"] == "yellow"
    assert tree["reason"] == "drift: the image of app was changed to django:evil by hand; restoring"
    assert (
        service(tree, "app")["reason"] == "Django: drift: image changed to django:evil by hand (Diploi runs django:1)"
    )
    assert tree["drift"] == ["the image of app was changed to django:evil by hand"]
    assert status(observed(app=serving(image="django:1")))["health"] == "green"


def test_row_the_namespace_missing_after_the_apply_with_nobody_asking_is_red_but_progress_while_creating():
    assert status(Observation())["health"] == "red"
    assert status(Observation(), expecting(intent=asked(S.CREATE)))["health"] == "progress"


# ----------------------------------------------------------------------------- transitions, both ways


def test_transition_green_to_restarting_to_green():
    green = status(observed())
    app = serving(updated=1, total=3)
    pods = [o.pod("app-new-a", "app", created=o.FRESH), o.pod("app-a", "app"), o.pod("app-b", "app", deleting=True)]
    restarting = status(
        observed(pods, app=app), expecting(intent=asked(S.RESTART)), previous=green, now=o.NOW + timedelta(seconds=1)
    )
    assert restarting["health"] == "progress" and restarting["since"] != green["since"]
    back = status(
        observed(), expecting(intent=asked(S.RESTART)), previous=restarting, now=o.NOW + timedelta(seconds=30)
    )
    assert back["health"] == "green" and back["settled"]


def test_transition_green_to_red_and_back_when_the_crash_heals():
    green = status(observed())
    red = status(observed([crashing("app-a"), crashing("app-b")], app=serving(ready=0)), previous=green)
    assert red["health"] == "red"
    assert status(observed(), previous=red)["health"] == "green"


def test_transition_enabled_to_disabled_and_back():
    disabling = expecting(enabled=False, intent=asked(S.DISABLE))
    disabled = replace(disabling, intent=None)
    zero = dict(app=serving(replicas=0, ready=0), pods_of_db=[], db=db_set(replicas=0, ready=0))
    trees = [
        status(observed()),
        status(observed([o.pod("app-a", "app", deleting=True)], **zero), disabling),
        status(observed([], **zero), disabled),
        status(
            observed([starting("app-a"), starting("app-b")], app=serving(ready=0, updated=2)),
            expecting(intent=asked(S.ENABLE)),
        ),
        status(observed()),
    ]
    assert [tree["health"] for tree in trees] == ["green", "progress", "disabled", "progress", "green"]


def test_transition_progress_to_late_and_back_to_green():
    app = serving(updated=1, total=3)
    pods = [o.pod("app-new-a", "app"), o.pod("app-a", "app"), o.pod("app-b", "app", deleting=True)]
    intent = asked(S.RESTART, seconds=0)
    first = status(observed(pods, app=app), expecting(intent=intent))
    late = status(observed(pods, app=app), expecting(intent=intent), now=o.NOW + timedelta(minutes=5))
    done = status(observed(), expecting(intent=intent), now=o.NOW + timedelta(minutes=6))
    assert [first["health"], late["health"], done["health"]] == ["progress", "yellow", "green"]


def test_transition_drift_and_restored():
    drift = status(observed([], app=serving(replicas=0, ready=0)))
    assert drift["health"] == "red"
    restoring = status(observed([starting("app-a"), starting("app-b")], app=serving(ready=0)), previous=drift)
    assert restoring["health"] == "progress"
    assert status(observed(), previous=restoring)["health"] == "green"


# ----------------------------------------------------------------------------- reasons a person can act on


def test_it_says_how_much_memory_the_size_needs_when_no_node_has_it():
    unschedulable = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod.",
    }
    pod = o.pod("app-a", "app", ready=False, phase="Pending", containers=[], conditions=[unschedulable])
    tree = status(observed([pod], app=serving(replicas=1, ready=0)), expecting(services=(replace(APP, replicas=1), DB)))
    assert tree["reason"] == (
        "app-a: FailedScheduling: 0/3 nodes have enough memory: the Large size needs 4 GiB; "
        "pick a smaller size or ask your operator"
    )


def test_it_tells_a_missing_image_from_a_refused_pull():
    waiting = o.waiting("ErrImagePull", 'failed to pull and unpack image "docker.io/library/app:nope": not found')
    pod = o.pod(
        "app-a", "app", ready=False, phase="Pending", containers=[o.container("app", state=waiting, ready=False)]
    )
    tree = status(observed([pod], app=serving(replicas=1, ready=0)), expecting(services=(replace(APP, replicas=1), DB)))
    assert tree["reason"] == "app: ImagePullBackOff: the image app:latest was not found: check its name and tag"


def test_it_says_for_how_long_a_readiness_check_has_failed():
    pod = o.pod("app-a", "app", ready=False, containers=[o.container("app", state=o.running(), ready=False)])
    pod["status"]["conditions"][0]["lastTransitionTime"] = (o.NOW - timedelta(seconds=90)).isoformat()
    tree = status(observed([pod], app=serving(replicas=1, ready=0)), expecting(services=(replace(APP, replicas=1), DB)))
    assert (tree["health"], tree["reason"]) == (
        "red",
        "Django down: app-a: not ready (running, readiness check on :8000 failing for 90 s)",
    )


# ----------------------------------------------------------------------------- the health timeline


def test_it_keeps_the_last_ten_health_changes_newest_first_so_a_flap_shows():
    healthy, broken = observed(), observed([crashing("app-a"), crashing("app-b")], app=serving(ready=0))
    tree = status(healthy)
    assert [entry["health"] for entry in tree["timeline"]] == ["green"]
    for minute in range(1, 13):
        tree = status(broken if minute % 2 else healthy, previous=tree, now=o.NOW + timedelta(minutes=minute))
        same = status(
            broken if minute % 2 else healthy, previous=tree, now=o.NOW + timedelta(minutes=minute, seconds=30)
        )
        assert same["timeline"] == tree["timeline"]  # no change, no entry
    assert len(tree["timeline"]) == 10
    assert [entry["health"] for entry in tree["timeline"][:3]] == ["green", "red", "green"]
    assert tree["timeline"][0]["at"] == (o.NOW + timedelta(minutes=12)).isoformat()
    assert tree["timeline"][1]["reason"] == "app: CrashLoopBackOff, 5 restarts, last exit 1 (Error)"


# ----------------------------------------------------------------------------- drift and the edge


def public_ingress(*, created=o.OLD, address: bool = True) -> dict:
    status = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}} if address else {}
    return {"kind": "Ingress", "metadata": {"name": "public", "creationTimestamp": created}, "status": status}


def test_row_a_service_or_ingress_deleted_by_hand_is_drift_being_restored():
    watched = frozenset({"Service", "Ingress"})
    services = [{"kind": "Service", "metadata": {"name": name}} for name in ("app", "postgres", "postgres-headless")]
    whole = replace(observed(), services=services, ingresses=[public_ingress()], watched=watched)
    assert status(whole)["health"] == "green" and status(whole)["drift"] == []
    # The headless Service governing a StatefulSet too.
    assert status(replace(whole, services=services[:2]))["reason"] == (
        "drift: Service postgres-headless was deleted; restoring"
    )
    tree = status(replace(whole, services=services[1:], ingresses=[]))
    assert (tree["health"], tree["reason"]) == (
        "yellow",
        "drift: Service app was deleted; Ingress public was deleted; restoring",
    )
    # While our own operation runs, a missing object is its progress, not drift.
    assert status(replace(whole, services=services[1:]), expecting(intent=asked(S.CHANGE)))["drift"] == []
    # Not looked for, not missing.
    assert status(replace(whole, services=[], ingresses=[], watched=frozenset()))["health"] == "green"


def test_row_an_ingress_no_controller_admitted_past_the_grace_is_yellow():
    tree = status(replace(observed(), ingresses=[public_ingress(address=False)]))
    assert (tree["health"], tree["reason"]) == (
        "yellow",
        "Django: no ingress controller has admitted app.apps.example.com",
    )
    young = public_ingress(address=False, created=o.FRESH)
    assert status(replace(observed(), ingresses=[young]))["health"] == "green"


def test_row_a_certificate_that_failed_is_yellow_with_the_issuers_message_and_no_cert_api_says_so():
    failed = o.certificate("app.apps.example.com", ready="False", reason="Failed", message="ACME challenge failed")
    tree = status(replace(observed(), certificates=[failed]))
    assert (tree["health"], tree["reason"]) == (
        "yellow",
        "Django: TLS for app.apps.example.com failed: ACME challenge failed",
    )
    unmanaged = status(replace(observed(), certificates=[failed], tls_managed=False))
    assert unmanaged["health"] == "green" and unmanaged["tls"] == {} and unmanaged["tls_managed"] is False


# ----------------------------------------------------------------------------- builds (issue 12)

SHA_GOOD, SHA_BAD = "a" * 40, "b" * 40


def build_row(number: int, state: str, *, sha: str = SHA_BAD, message: str = "", step: int = 0) -> dict:
    """A Build row as `statuses.builds_nodes` reads it (newest first by number)."""
    at = o.NOW - timedelta(minutes=10 - number)
    return {
        "id": number,
        "component": "app",
        "state": state,
        "step": step,
        "steps": 5 if step else 0,
        "step_text": f"[{step}/5] RUN pip install" if step else "",
        "message": message,
        "commit_sha": sha,
        "commit_message": "",
        "simulated": False,
        "run_url": "",
        "requested_at": at,
        "started_at": at,
        "finished_at": at + timedelta(minutes=1) if state in ("succeeded", "failed", "cancelled") else None,
    }


def builds(*rows: dict) -> dict:
    from deployments.builds.status import builds_node

    newest_first = sorted(rows, key=lambda r: r["id"], reverse=True)
    return builds_node(
        newest_first, buildable=["app"], deployed_commit=SHA_GOOD, log_url=lambda i: f"/b/{i}", stage_mode="build"
    )


def with_builds(observation: Observation, node: dict, expect: Expectation = EXPECT, *, previous=None) -> dict:
    return compute_status(expect, observation, now=o.NOW, grace=GRACE, previous=previous, builds=node)


GOOD = build_row(1, "succeeded", sha=SHA_GOOD)
FAILED = build_row(2, "failed", message="pip install: exit code: 1")
FAILURE = f"Build of app at {SHA_BAD[:7]} failed: pip install: exit code: 1"


def awaiting_expectation() -> Expectation:
    return expecting(services=(replace(APP, awaiting_build=True), DB))


def without_app() -> Observation:
    return observed([], app=False)


def test_row_a_build_running_while_the_last_good_version_serves_changes_nothing():
    tree = with_builds(observed(), builds(GOOD, build_row(2, "running", step=3)))
    assert (tree["health"], tree["reason"]) == ("green", "All services ready")
    assert tree["nodes"]["builds"]["reason"] == f"Building app at {SHA_BAD[:7]}, step 3/5: [3/5] RUN pip install"


def test_row_a_failed_later_build_is_yellow_with_its_reason_while_the_last_good_version_serves():
    tree = with_builds(observed(), builds(GOOD, FAILED))
    assert (tree["health"], tree["reason"]) == ("yellow", f"{FAILURE}; the last good version keeps serving")
    assert (tree["nodes"]["builds"]["health"], tree["nodes"]["builds"]["reason"]) == ("red", FAILURE)
    # What the cluster alone says is kept, so the builds' effect can be derived again from the stored tree.
    assert tree["base"] == {"health": "green", "reason": "All services ready"}
    assert tree["settled"]  # the running version is rolled out and ready: operations may end


def test_row_a_failed_later_build_leaves_a_worse_or_own_state_alone():
    crashing_db = observed(pods_of_db=[o.pod("postgres-0", "postgres", kind="addon", ready=False)])
    yellow = with_builds(crashing_db, builds(GOOD, FAILED))
    assert yellow["health"] == "yellow" and yellow["reason"].startswith("PostgreSQL")
    down = with_builds(observed([crashing("app-a"), crashing("app-b")], app=serving(ready=0)), builds(GOOD, FAILED))
    assert down["health"] == "red" and "CrashLoopBackOff" in down["reason"]
    pods = [o.pod("app-new-a", "app", created=o.FRESH), o.pod("app-a", "app"), o.pod("app-b", "app", deleting=True)]
    restart = observed(pods, app=serving(updated=1, total=3))
    restarting = with_builds(restart, builds(GOOD, FAILED), expecting(intent=asked(S.RESTART)))
    assert restarting["health"] == "progress" and restarting["reason"].startswith("Restarting")
    deleting = with_builds(Observation(), builds(GOOD, FAILED), expecting(deleting=True, intent=asked(S.DELETE)))
    assert deleting["health"] == "progress" and deleting["reason"].startswith("Deleting")
    disabled = with_builds(
        observed([], app=serving(replicas=0, ready=0), pods_of_db=[], db=db_set(replicas=0, ready=0)),
        builds(GOOD, FAILED),
        expecting(enabled=False),
    )
    assert disabled["health"] == "disabled"


def test_row_waiting_for_the_first_build_is_yellow_and_red_once_it_failed_with_nothing_to_run():
    waiting = with_builds(without_app(), builds(build_row(1, "running", step=2)), awaiting_expectation())
    assert (waiting["health"], waiting["reason"]) == ("yellow", "Django: waiting for the first build")
    failed = with_builds(without_app(), builds(FAILED), awaiting_expectation())
    assert (failed["health"], failed["reason"]) == ("red", f"{FAILURE}; Django cannot run until a build succeeds")


def test_transition_serving_to_a_failed_build_and_back_when_a_newer_one_succeeds():
    green = with_builds(observed(), builds(GOOD))
    failed = with_builds(observed(), builds(GOOD, FAILED), previous=green)
    assert (green["health"], failed["health"]) == ("green", "yellow")
    assert failed["nodes"]["builds"]["since"] == FAILED["finished_at"].isoformat()  # since the build failed
    retry = with_builds(observed(), builds(GOOD, FAILED, build_row(3, "running", step=1)), previous=failed)
    assert retry["health"] == "green"  # a newer build of the component decides: under way, the last good serves
    again = with_builds(observed(), builds(GOOD, FAILED, build_row(3, "succeeded", sha=SHA_GOOD)), previous=retry)
    assert (again["health"], again["nodes"]["builds"]["health"]) == ("green", "green")


def test_transition_first_build_failed_red_to_yellow_when_built_again_then_green_once_it_runs():
    red = with_builds(without_app(), builds(FAILED), awaiting_expectation())
    retry = with_builds(without_app(), builds(FAILED, build_row(3, "queued")), awaiting_expectation(), previous=red)
    assert (red["health"], retry["health"]) == ("red", "yellow")
    built = with_builds(observed(), builds(FAILED, build_row(3, "succeeded", sha=SHA_GOOD)), previous=retry)
    assert built["health"] == "green"


def test_the_builds_effect_derived_again_from_a_stored_tree_is_the_computed_one():
    """What `statuses.status_builds_refresh` does when a build row moves: no cluster observation needed."""
    stored = with_builds(observed(), builds(GOOD))
    computed = with_builds(observed(), builds(GOOD, FAILED))
    derived = S.carry_since(S.apply_builds(stored, builds(GOOD, FAILED)), stored, o.NOW)
    assert (derived["health"], derived["reason"], derived["nodes"]) == (
        computed["health"],
        computed["reason"],
        {**stored["nodes"], "builds": computed["nodes"]["builds"]},
    )
    assert S.apply_builds(derived, builds(GOOD))["health"] == "green"  # and back
    # A tree stored before the builds counted (no "base"): its own health is what the cluster said.
    old = {k: v for k, v in stored.items() if k != "base"}
    assert S.apply_builds(old, builds(GOOD, FAILED))["health"] == "yellow"


# ----------------------------------------------------------------------------- Services and EndpointSlices


def endpoint_slice(service: str, *ready: bool) -> dict:
    """A slice as the cluster's endpointslice-controller writes it: one endpoint per pod."""
    return {
        "kind": "EndpointSlice",
        "metadata": {"name": f"{service}-x7k2p", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [f"10.1.0.{i}"], "conditions": {"ready": r, "serving": r, "terminating": False}}
            for i, r in enumerate(ready)
        ],
    }


def behind_services(slices: list[dict], *, app_pods=None, created=o.OLD) -> Observation:
    services = [
        {"kind": "Service", "metadata": {"name": name, "creationTimestamp": created}}
        for name in ("app", "postgres", "postgres-headless")
    ]
    watched = frozenset({"Service", "EndpointSlice"})
    return replace(observed(app_pods), services=services, endpoint_slices=slices, watched=watched)


def test_row_a_public_host_whose_service_has_no_ready_endpoint_is_red_past_the_grace():
    routed = behind_services([endpoint_slice("app", True, True), endpoint_slice("postgres", True)])
    assert status(routed)["health"] == "green"
    # The pods serve, but the Service reaches none of them (its selector or port was changed by hand, say).
    tree = status(behind_services([endpoint_slice("app", False, False), endpoint_slice("postgres", True)]))
    assert (tree["health"], tree["reason"]) == (
        "red",
        "Django down: no ready endpoint behind app.apps.example.com: "
        "the Service app routes to none of its 2 ready pods",
    )
    assert not tree["settled"]
    assert status(behind_services([endpoint_slice("postgres", True)]))["health"] == "red"  # no slice at all
    # An internal add-on without endpoints is not a public host.
    assert status(behind_services([endpoint_slice("app", True, True)]))["health"] == "green"


def test_row_no_ready_endpoint_yet_is_not_red_within_the_grace_nor_when_slices_are_not_watched():
    # Pods that turned ready a moment ago: the cluster's controller has not caught up yet.
    fresh = [o.pod("app-a", "app", created=o.FRESH), o.pod("app-b", "app", created=o.FRESH)]
    assert status(behind_services([endpoint_slice("postgres", True)], app_pods=fresh))["health"] == "green"
    # A Service created a moment ago.
    assert status(behind_services([endpoint_slice("postgres", True)], created=o.FRESH))["health"] == "green"
    unwatched = replace(behind_services([]), watched=frozenset({"Service"}))
    assert status(unwatched)["health"] == "green"


def test_transition_no_ready_endpoint_and_back_when_the_service_routes_again():
    routed = status(behind_services([endpoint_slice("app", True, True), endpoint_slice("postgres", True)]))
    cut = status(
        behind_services([endpoint_slice("app", False, False), endpoint_slice("postgres", True)]), previous=routed
    )
    assert (routed["health"], cut["health"]) == ("green", "red")
    later = o.NOW + timedelta(seconds=5)
    one = [endpoint_slice("app", True, False), endpoint_slice("postgres", True)]
    back = status(behind_services(one), previous=cut, now=later)
    assert back["health"] == "green" and back["since"] == later.isoformat()


def oom_killed(restarts: int, finished: timedelta) -> Observation:
    """The app's one pod, OOM-killed ``restarts`` times, the last one ``finished`` before NOW."""
    ended = (o.NOW - finished).isoformat()  # and it runs again since
    app = o.container(
        "app", state=o.running(ended), ready=False, restarts=restarts, last_exit=137, last_reason="OOMKilled"
    )
    app["lastState"]["terminated"]["finishedAt"] = ended
    return observed([o.pod("app-a", "app", ready=False, containers=[app])], app=serving(ready=0))


def test_it_counts_oom_kills_in_a_ten_minute_window_from_tree_to_tree():
    """A pod's status holds only its last termination: the trees remember the earlier ones."""
    first = status(oom_killed(1, timedelta(minutes=9)))
    assert first["reason"] == "app: OOMKilled: used more than its 4 GiB limit (last of 1 restart); pick a larger size"
    second = status(oom_killed(2, timedelta(minutes=5)), previous=first)
    third = status(oom_killed(3, timedelta(minutes=1)), previous=second)
    assert third["reason"] == "app: OOMKilled: used more than its 4 GiB limit 3 times in 10 min; pick a larger size"
    # Two minutes on, the first kill is more than ten minutes old: it no longer counts.
    later = status(oom_killed(3, timedelta(minutes=1)), previous=third, now=o.NOW + timedelta(minutes=2))
    assert "limit 2 times in 10 min" in later["reason"]
    # Healed (running and ready again): no fault, whatever it remembers.
    app = o.container("app", state=o.running(), ready=True, restarts=3, last_exit=137, last_reason="OOMKilled")
    healed = status(observed([o.pod("app-a", "app", containers=[app]), o.pod("app-b", "app")]), previous=later)
    assert healed["health"] == "green"


def liveness_killed(*, events: bool = True) -> Observation:
    """The app's pod, killed by the kubelet twice for a failed liveness probe (exit 137), as it reports it."""
    app = o.container("app", state=o.waiting("CrashLoopBackOff"), ready=False, restarts=2, last_exit=137)
    pod = o.pod("app-a", "app", ready=False, containers=[app])
    pod["metadata"]["uid"] = "uid-app-a"
    probe = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 10, "failureThreshold": 6}
    pod["spec"] = {
        "containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 8000}], "livenessProbe": probe}]
    }
    unhealthy = {
        "kind": "Event",
        "metadata": {"name": "app-a.1", "namespace": "shop-dev-abc123"},
        "involvedObject": {"kind": "Pod", "name": "app-a", "uid": "uid-app-a", "fieldPath": "spec.containers{app}"},
        "reason": "Unhealthy",
        "type": "Warning",
        "message": "Liveness probe failed: HTTP probe failed with statuscode: 500",
        "count": 12,
        "lastTimestamp": o.FRESH,
    }
    return replace(observed([pod], app=serving(ready=0)), events=[unhealthy] if events else [])


def test_row_a_failed_liveness_probe_says_so_with_its_port_and_for_how_long():
    tree = status(liveness_killed())
    assert (tree["health"], tree["reason"]) == (
        "red",
        "app: Liveness probe failed on :8000 for 60 s (HTTP probe failed with statuscode: 500), killed 2 times",
    )
    # Without the kubelet's events it is the crash loop it looks like.
    assert status(liveness_killed(events=False))["reason"].startswith(
        "app: CrashLoopBackOff, 2 restarts, last exit 137"
    )
    # Healed: the same events (kept for an hour) say nothing of a container that runs and is ready.
    ok = replace(
        liveness_killed(),
        pods=[o.pod("app-a", "app"), o.pod("app-b", "app"), db_pod()],
        workloads=[serving(), db_set()],
    )
    assert status(ok, previous=tree)["health"] == "green"


def readiness_failing(
    name: str = "app-a", *, unready_for: int = 90, created=o.OLD, service: str = "app", kind="component"
):
    """A running pod of ``service`` whose readiness probe the kubelet reports failing (Unhealthy), unready
    for ``unready_for`` seconds, with the event the kubelet aggregates for it."""
    port = 8000 if service == "app" else 5432
    app = o.container(service, state=o.running(), ready=False)
    pod = o.pod(name, service, ready=False, created=created, containers=[app], kind=kind)
    pod["metadata"]["uid"] = f"uid-{name}"
    pod["status"]["conditions"][0]["lastTransitionTime"] = (o.NOW - timedelta(seconds=unready_for)).isoformat()
    probe = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5, "failureThreshold": 3}
    pod["spec"] = {
        "containers": [{"name": service, "ports": [{"name": "http", "containerPort": port}], "readinessProbe": probe}]
    }
    event = {
        "kind": "Event",
        "metadata": {"name": f"{name}.2", "namespace": "shop-dev-abc123"},
        "involvedObject": {
            "kind": "Pod",
            "name": name,
            "uid": f"uid-{name}",
            "fieldPath": f"spec.containers{{{service}}}",
        },
        "reason": "Unhealthy",
        "type": "Warning",
        "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
        "count": 18,
        "firstTimestamp": (o.NOW - timedelta(seconds=unready_for - 2)).isoformat(),
        "lastTimestamp": (o.NOW - timedelta(seconds=1)).isoformat(),
    }
    return pod, event


ONE_APP = expecting(services=(replace(APP, replicas=1), DB))


def test_row_a_readiness_probe_failing_past_the_grace_period_is_red_with_the_kubelets_words():
    pod, event = readiness_failing(unready_for=90)
    tree = status(replace(observed([pod], app=serving(replicas=1, ready=0)), events=[event]), ONE_APP)
    assert (tree["health"], tree["reason"]) == (
        "red",
        "app: Readiness probe failed on :8000 for 90 s (HTTP probe failed with statuscode: 503)",
    )
    assert tree["nodes"]["containers"]["items"][0]["fault"] is True


def test_a_readiness_probe_failing_for_less_than_the_grace_period_is_not_yet_a_fault():
    pod, event = readiness_failing(unready_for=30)
    tree = status(replace(observed([pod], app=serving(replicas=1, ready=0)), events=[event]), ONE_APP)
    item = tree["nodes"]["containers"]["items"][0]
    assert (item["health"], item["fault"]) == ("yellow", False)
    assert item["reason"] == (
        "app-a: not ready (app: Readiness probe failed on :8000 for 30 s (HTTP probe failed with statuscode: 503))"
    )
    # Nothing serves the public host and nobody asked for anything: down, in the kubelet's words.
    assert tree["reason"] == f"Django down: {item['reason']}"


def test_a_failing_readiness_probe_on_one_pod_while_the_other_serves_is_yellow():
    pod, event = readiness_failing(unready_for=90)
    tree = status(replace(observed([pod, o.pod("app-b", "app")]), events=[event]))
    assert (tree["health"], tree["reason"]) == (
        "yellow",
        "app: Readiness probe failed on :8000 for 90 s (HTTP probe failed with statuscode: 503); 1 of 2 still serving",
    )


def test_a_new_pod_failing_readiness_while_it_starts_is_progress_of_the_restart():
    # The kubelet reports a starting app's refused connections as readiness failures too: that is the
    # start, not a fault.
    pod, event = readiness_failing("app-c", unready_for=4, created=o.FRESH)
    event["message"] = 'Readiness probe failed: Get "http://10.244.0.12:8000/": connect: connection refused'
    tree = status(
        replace(observed([o.pod("app-a", "app"), pod], app=serving(ready=1, updated=1)), events=[event]),
        expecting(intent=asked(S.RESTART, target="app")),
    )
    assert tree["health"] == "progress"
    assert tree["reason"].startswith("Restarting Django, asked by ana 20 s ago: ")


def test_readiness_failures_from_before_the_pod_last_turned_unready_are_not_its_reason():
    pod, event = readiness_failing(unready_for=90)
    event["lastTimestamp"] = event["firstTimestamp"] = (o.NOW - timedelta(minutes=30)).isoformat()
    tree = status(replace(observed([pod], app=serving(replicas=1, ready=0)), events=[event]), ONE_APP)
    assert tree["reason"] == "Django down: app-a: not ready (running, readiness check on :8000 failing for 90 s)"


def test_an_add_on_failing_its_readiness_probe_is_yellow_and_a_healed_one_green_again():
    pod, event = readiness_failing("postgres-0", unready_for=300, service="postgres", kind="addon")
    broken = replace(observed(pods_of_db=[pod], db=db_set(ready=0)), events=[event])
    tree = status(broken)
    assert (tree["health"], tree["reason"]) == (
        "yellow",
        "postgres: Readiness probe failed on :5432 for 5 min (HTTP probe failed with statuscode: 503)",
    )
    # Ready again: the same event (kept for an hour) says nothing of it any more.
    healed = replace(observed(), events=[event])
    assert status(healed, previous=tree)["health"] == "green"
    # And back.
    assert status(broken, previous=status(healed))["health"] == "yellow"


def waiting_for_its_volume(created: str) -> Observation:
    """postgres-0 created with its claim, which is not bound yet: the scheduler says so, as a real one
    does for every new pod with a volume while it is provisioned."""
    condition = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: "
        "0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
    }
    pod = db_pod(ready=False, phase="Pending", containers=[], conditions=[condition], created=created)
    return observed(
        pods_of_db=[pod],
        db=db_set(ready=0, created=created),
        claims=[o.claim("data-postgres-0", "postgres", phase="Pending", created=created)],
    )


def test_row_a_new_pod_waiting_for_its_volume_is_progress_of_the_create_not_a_scheduling_fault():
    tree = status(waiting_for_its_volume(o.FRESH), expecting(intent=asked(S.CREATE)))
    assert tree["health"] == "progress", tree["reason"]
    pod = tree["nodes"]["containers"]["items"][-1]
    assert (pod["health"], pod["fault"], pod["reason"]) == (
        "progress",
        False,
        "postgres-0: starting (waiting for its volume)",
    )


def test_row_a_claim_that_cannot_bind_past_the_grace_is_a_fault_in_the_schedulers_words():
    tree = status(waiting_for_its_volume(o.OLD))
    assert (tree["health"], tree["reason"]) == (
        "yellow",
        "postgres-0: FailedScheduling: 0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
    )
    assert tree["nodes"]["storage"]["reason"] == "data-postgres-0 (5Gi) still waiting for a volume"


def test_liveness_failures_of_an_earlier_run_do_not_explain_a_later_crash():
    # Events live for an hour: the kubelet's liveness failures came before the run that crashed now.
    observation = liveness_killed()
    pod = observation.pods[0]
    pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["startedAt"] = (
        o.NOW - timedelta(seconds=2)
    ).isoformat()
    observation.events[0]["lastTimestamp"] = (o.NOW - timedelta(minutes=20)).isoformat()
    assert status(observation)["reason"].startswith("app: CrashLoopBackOff, 2 restarts, last exit 137")


def test_a_container_that_crashed_long_ago_and_fails_its_readiness_now_says_so_not_crash_loop():
    pod, event = readiness_failing(unready_for=90)
    app = pod["status"]["containerStatuses"][0]
    app.update(restartCount=1, lastState={"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": o.OLD}})
    app["state"] = o.running((o.NOW - timedelta(minutes=30)).isoformat())
    tree = status(replace(observed([pod], app=serving(replicas=1, ready=0)), events=[event]), ONE_APP)
    assert tree["reason"] == "app: Readiness probe failed on :8000 for 90 s (HTTP probe failed with statuscode: 503)"
    # Running again for a moment only, after that crash: still the crash loop it looks like.
    app["state"] = o.running((o.NOW - timedelta(seconds=20)).isoformat())
    tree = status(replace(observed([pod], app=serving(replicas=1, ready=0)), events=[event]), ONE_APP)
    assert tree["reason"].startswith("app: CrashLoopBackOff, 1 restart, last exit 1 (Error)")
