"""Diploi's status format read from bytes (`report.read_answer`), and the items it makes in the status tree
(`cluster.status.compute_status`). Pure."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from deployments.appstatus.report import MAX_ITEMS, read_answer
from deployments.cluster.status import compute_status
from tests.deployments.cluster import objects as o
from tests.deployments.cluster.test_status_states import EXPECT, GRACE, asked, crashing, observed, service

MAX = 64 * 1024


def answer(document, *, status=200, truncated=False):
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return read_answer(status, "application/json", body, truncated=truncated, max_bytes=MAX)


def item(identifier="app", status="green", **extra):
    return {"identifier": identifier, "name": identifier.title(), "status": status, **extra}


def test_it_reads_diploi_status_items_with_nested_ones_flattened():
    read = answer(
        {
            "diploiStatusVersion": 1,
            "items": [
                item("www", "yellow", message="Waiting for Next.js...", isPending=True, description="Next.js website"),
                item("api", "green", items=[item("db", "red", message="connection refused")]),
                {"identifier": "openai", "name": "OpenAI credentials", "status": "gray", "message": "Not set"},
            ],
        }
    )
    assert read.error == ""
    assert [(i["identifier"], i["status"], i["pending"]) for i in read.items] == [
        ("www", "yellow", True),
        ("api", "green", False),
        ("api/db", "red", False),
        ("openai", "grey", False),
    ]
    assert read.items[0]["message"] == "Waiting for Next.js..."
    assert read.items[0]["description"] == "Next.js website"
    assert read.items[2]["name"] == "Api: Db"


def test_the_documented_examples_are_read_as_documented():
    text = (Path(__file__).resolve().parents[3] / "docs" / "templates.md").read_text()
    section = text[text.index("### Status URL") : text.index("## Validation")]
    example, static_site = (block.encode() for block in re.findall(r"```json\n(.*?)```", section, re.S))
    assert [(i["identifier"], i["status"]) for i in answer(example).items] == [
        ("www", "green"),
        ("database", "yellow"),
        ("database/replica", "grey"),
    ]
    assert [i["identifier"] for i in answer(static_site).items] == ["web"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>Welcome to nginx!</html>", "the answer is not JSON"),
        (b"\xff\xfe", "the answer is not UTF-8 text"),
        (b"[1, 2]", "the answer is a JSON array, not an object with diploiStatusVersion and items"),
        (b'{"items": []}', "the answer has no diploiStatusVersion"),
        (b'{"diploiStatusVersion": 2, "items": []}', "diploiStatusVersion is 2; Diploi reads version 1"),
        (b'{"diploiStatusVersion": true, "items": []}', "diploiStatusVersion is true; Diploi reads version 1"),
        (b'{"diploiStatusVersion": 1}', "items is missing, not a list"),
        (b'{"diploiStatusVersion": 1, "items": {}}', "items is a JSON object, not a list"),
        (b'{"diploiStatusVersion": 1, "items": ["x"]}', "items[0] is a JSON string, not an object"),
        (b'{"diploiStatusVersion": 1, "items": [{"status": "green"}]}', "items[0] has no identifier"),
        (
            b'{"diploiStatusVersion": 1, "items": [{"identifier": "a", "status": "blue"}]}',
            'items[0].status is "blue"; expected green, yellow, red or gray',
        ),
        (
            b'{"diploiStatusVersion": 1, "items": [{"identifier": "a", "status": "red", "message": 3}]}',
            "items[0].message is a JSON number, not a string",
        ),
        (
            b'{"diploiStatusVersion": 1, "items": [{"identifier": "a"}, {"identifier": "a"}]}',
            "the identifier 'a' is used twice",
        ),
    ],
)
def test_it_says_what_is_wrong_with_an_answer_in_another_shape(body, reason):
    read = answer(body)
    assert read.items == ()
    assert read.error.startswith(reason), read.error


def test_it_bounds_what_it_accepts():
    many = {"diploiStatusVersion": 1, "items": [item(f"i{n}") for n in range(MAX_ITEMS + 1)]}
    assert answer(many).error == f"the answer has {MAX_ITEMS + 1} items; at most {MAX_ITEMS}"
    assert answer(b"{", truncated=True).error == "the answer is larger than 64 KiB"
    long = answer({"diploiStatusVersion": 1, "items": [item("a", message="x" * 5000)]})
    assert len(long.items[0]["message"]) == 500


def test_it_tells_the_api_server_refusing_from_the_app_failing():
    def refusal(code, message):
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}
        return answer(status, status=code)

    no_endpoints = refusal(503, 'no endpoints available for service "app"')
    assert (no_endpoints.error, no_endpoints.unserved) == ('no endpoints available for service "app"', True)
    assert refusal(404, 'services "app" not found').unserved
    refused = refusal(503, "error trying to reach service: dial tcp 10.0.0.7:8000: connect: connection refused")
    assert refused.error.endswith("connection refused") and not refused.unserved
    assert answer(b"Internal Server Error", status=500).error == "the app answered 500"
    # The API server itself failing, or refusing Diploi: not the app's doing.
    failing = refusal(500, "Internal error occurred: etcdserver: request timed out")
    assert failing.api_failed and not refusal(429, "Too many requests").unserved
    assert refusal(429, "Too many requests").api_failed
    forbidden = refusal(403, 'services "app" is forbidden: User "diploi-watcher" cannot get resource "services/proxy"')
    assert forbidden.unserved and forbidden.error.startswith("Diploi may not ask: services")
    slow = read_answer(0, "", b"", truncated=False, max_bytes=MAX, timed_out=True)
    assert slow.error == "no answer in time" and not slow.unserved


# ----------------------------------------------------------------------------- in the tree

APP_EXPECT = replace(EXPECT, status_service="app")
APP_GRACE = timedelta(seconds=30)


def tree_with(report, *, expect=APP_EXPECT, observation=None, now=o.NOW):
    observation = observation or observed()
    observation.app_status = report
    return compute_status(expect, observation, now=now, grace=GRACE, app_grace=APP_GRACE)


def reported(*items):
    return {"items": [dict(i) for i in items], "error": "", "failing_since": None}


def app_item(identifier, status, message=""):
    return {
        "identifier": identifier,
        "name": identifier.title(),
        "description": "",
        "status": status,
        "message": message,
        "pending": False,
    }


def test_items_join_the_services_node_and_a_yellow_one_makes_the_deployment_yellow():
    tree = tree_with(reported(app_item("www", "green", "Serving"), app_item("db", "yellow", "Slow queries")))
    keys = [i["key"] for i in tree["nodes"]["services"]["items"]]
    assert keys == ["app", "postgres", "app:www", "app:db"]
    db = service(tree, "app:db")
    assert (db["health"], db["reason"], db["kind"], db["reported_by"]) == (
        "yellow",
        "Db: Slow queries",
        "app-status",
        "Django",
    )
    assert db["since"] == o.NOW.isoformat()
    assert tree["nodes"]["services"]["health"] == "yellow"
    assert (tree["health"], tree["reason"]) == ("yellow", "Db: Slow queries")
    # Settled means the cluster shows the desired state: what the app says does not hold an operation back.
    assert tree["settled"]


def test_a_red_item_makes_the_deployment_red_and_green_grey_ones_change_nothing():
    red = tree_with(reported(app_item("db", "red", "Cannot reach the database")))
    assert (red["health"], red["reason"]) == ("red", "Db: Cannot reach the database")
    calm = tree_with(reported(app_item("www", "green"), app_item("openai", "grey")))
    assert (calm["health"], calm["reason"]) == ("green", "All services ready")
    assert service(calm, "app:www")["reason"] == "Www: OK"
    assert service(calm, "app:openai")["health"] == "unknown"


def test_since_follows_each_items_colour():
    first = tree_with(reported(app_item("db", "yellow", "Starting")))
    later = o.NOW + timedelta(seconds=40)

    def then(*items):
        observation = observed()
        observation.app_status = reported(*items)
        return compute_status(APP_EXPECT, observation, now=later, grace=GRACE, previous=first)

    assert service(then(app_item("db", "yellow", "Still starting")), "app:db")["since"] == o.NOW.isoformat()
    assert service(then(app_item("db", "green")), "app:db")["since"] == later.isoformat()


def test_an_app_that_does_not_answer_is_unknown_then_yellow_after_the_grace_never_red():
    silent = {"items": [], "error": "no answer in time", "failing_since": o.NOW - timedelta(seconds=10)}
    tree = tree_with(silent)
    unknown = service(tree, "app status")
    assert (unknown["health"], unknown["reason"]) == ("unknown", "Django status unknown: no answer in time")
    assert (tree["health"], tree["reason"]) == ("green", "All services ready")
    late = tree_with(silent, now=o.NOW + timedelta(seconds=30))
    assert service(late, "app status")["health"] == "yellow"
    assert (late["health"], late["reason"]) == ("yellow", "Django status unknown: no answer in time")
    much_later = tree_with(silent, now=o.NOW + timedelta(days=2))
    assert much_later["health"] == "yellow"


def test_a_service_that_does_not_serve_speaks_for_itself():
    silent = {"items": [], "error": 'no endpoints available for service "app"', "failing_since": None}
    down = observed([crashing("app-a"), crashing("app-b")])
    tree = tree_with(silent, observation=down, now=o.NOW + timedelta(days=1))
    assert service(tree, "app status")["health"] == "unknown"
    assert tree["reason"].startswith("app: CrashLoopBackOff")


def test_nothing_is_reported_for_a_disabled_or_deleted_deployment_or_a_template_without_status_url():
    report = reported(app_item("db", "red"))
    for expect in (replace(APP_EXPECT, enabled=False), replace(APP_EXPECT, deleting=True), EXPECT):
        tree = tree_with(report, expect=expect)
        assert not [i for i in tree["nodes"]["services"]["items"] if i.get("kind") == "app-status"]


def test_an_operation_under_way_still_words_the_progress_of_its_service():
    starting_pod = o.pod("app-c", "app", ready=False, created=o.FRESH)
    tree = tree_with(
        reported(app_item("db", "green")),
        expect=replace(APP_EXPECT, intent=asked("restart", target="app")),
        observation=observed([o.pod("app-a", "app"), starting_pod]),
    )
    assert tree["health"] == "progress"
    assert tree["reason"].startswith("Restarting Django, asked by ana")


def test_a_pending_yellow_item_is_progress_for_the_grace_period_then_yellow():
    starting = dict(app_item("www", "yellow", "Starting"), pending=True, pending_since=o.NOW.isoformat())
    tree = tree_with(reported(starting), now=o.NOW + timedelta(seconds=10))
    assert service(tree, "app:www")["health"] == "progress"
    assert (tree["health"], tree["reason"]) == ("progress", "Www: Starting")
    stuck = tree_with(reported(starting), now=o.NOW + APP_GRACE + timedelta(seconds=1))
    assert (stuck["health"], stuck["reason"]) == ("yellow", "Www: Starting")
    red = dict(starting, status="red")
    assert tree_with(reported(red), now=o.NOW + timedelta(seconds=10))["health"] == "red"
