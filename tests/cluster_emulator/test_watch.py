"""Watches through `kubernetes.watch.Watch().stream(...)`, as the client reads them."""

from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client, watch

from .conftest import api_for, eventually, make_namespace


def configmap(name: str, labels: dict | None = None, value: str = "1") -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": {"v": value}}


def collect(stream, count: int, timeout: float = 5.0) -> list[dict]:
    events = []
    deadline = time.monotonic() + timeout
    for event in stream:
        events.append(event)
        if len(events) >= count or time.monotonic() > deadline:
            break
    return events


def test_it_streams_added_modified_and_deleted(core, namespace):
    listed = core.list_namespaced_config_map(namespace)
    w = watch.Watch()
    stream = w.stream(
        core.list_namespaced_config_map, namespace, resource_version=listed.metadata.resource_version, timeout_seconds=5
    )

    def writes():
        core.create_namespaced_config_map(namespace, configmap("watched"))
        core.patch_namespaced_config_map("watched", namespace, {"data": {"v": "2"}})
        core.delete_namespaced_config_map("watched", namespace)

    threading.Thread(target=writes).start()
    events = collect(stream, 3)
    w.stop()
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert all(isinstance(e["object"], client.V1ConfigMap) for e in events)
    assert events[1]["object"].data == {"v": "2"}
    versions = [int(e["object"].metadata.resource_version) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_it_sends_current_objects_first_without_a_resource_version(core, namespace):
    core.create_namespaced_config_map(namespace, configmap("existing"))
    events = collect(watch.Watch().stream(core.list_namespaced_config_map, namespace, timeout_seconds=1), 2)
    assert {(e["type"], e["object"].metadata.name) for e in events} == {
        ("ADDED", "existing"),
        ("ADDED", "kube-root-ca.crt"),
    }


def test_it_resumes_from_a_resource_version(core, namespace):
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, configmap("later-1"))
    core.create_namespaced_config_map(namespace, configmap("later-2"))
    events = collect(
        watch.Watch().stream(core.list_namespaced_config_map, namespace, resource_version=start, timeout_seconds=1), 2
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "later-1"), ("ADDED", "later-2")]


def test_it_answers_410_gone_after_history_expired(own_emulator):
    with api_for(own_emulator) as api:
        core = client.CoreV1Api(api)
        namespace = make_namespace(core)
        old = core.list_namespaced_config_map(namespace).metadata.resource_version
        core.create_namespaced_config_map(namespace, configmap("after"))
        own_emulator.faults.expire_history()
        response = core.list_namespaced_config_map(
            namespace, watch=True, resource_version=old, timeout_seconds=1, _preload_content=False
        )
        assert response.status == 200
        event = json.loads(response.data.decode().splitlines()[0])
        assert event["type"] == "ERROR"
        assert event["object"]["kind"] == "Status" and event["object"]["code"] == 410
        assert event["object"]["reason"] == "Expired"
        with pytest.raises(client.ApiException) as caught:
            list(
                watch.Watch().stream(
                    core.list_namespaced_config_map, namespace, resource_version=old, timeout_seconds=1
                )
            )
        assert caught.value.status == 410
        current = core.list_namespaced_config_map(namespace).metadata.resource_version
        assert (
            list(
                watch.Watch().stream(
                    core.list_namespaced_config_map, namespace, resource_version=current, timeout_seconds=1
                )
            )
            == []
        )


def test_it_filters_by_label_and_reports_objects_leaving_the_selection_as_deleted(core, namespace):
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, configmap("in", {"team": "a"}))
    core.create_namespaced_config_map(namespace, configmap("out", {"team": "b"}))
    core.patch_namespaced_config_map("in", namespace, {"metadata": {"labels": {"team": "b"}}})
    core.patch_namespaced_config_map("out", namespace, {"metadata": {"labels": {"team": "a"}}})
    events = collect(
        watch.Watch().stream(
            core.list_namespaced_config_map,
            namespace,
            label_selector="team=a",
            resource_version=start,
            timeout_seconds=1,
        ),
        3,
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "in"),
        ("DELETED", "in"),
        ("ADDED", "out"),
    ]


@pytest.mark.parametrize("own_emulator", [{"bookmark_interval": 0.1}], indirect=True)
def test_it_sends_bookmarks_when_asked(own_emulator):
    with api_for(own_emulator) as api:
        core = client.CoreV1Api(api)
        rv = core.list_namespaced_config_map("default").metadata.resource_version
        w = watch.Watch()
        events = collect(
            w.stream(
                core.list_namespaced_config_map,
                "default",
                resource_version=rv,
                allow_watch_bookmarks=True,
                timeout_seconds=2,
            ),
            1,
        )
        w.stop()
        assert events[0]["type"] == "BOOKMARK"
        assert events[0]["raw_object"]["metadata"]["resourceVersion"] == rv
        assert w.resource_version == rv


def test_it_ends_the_stream_after_timeout_seconds(core, namespace):
    started = time.monotonic()
    assert list(watch.Watch().stream(core.list_namespaced_secret, namespace, timeout_seconds=1)) == []
    assert 0.9 < time.monotonic() - started < 10  # ended by the server near 1 s, with room for a loaded machine


def test_it_watches_all_namespaces(core, namespace):
    start = core.list_config_map_for_all_namespaces().metadata.resource_version
    other = make_namespace(core)
    core.create_namespaced_config_map(namespace, configmap("here"))
    core.create_namespaced_config_map(other, configmap("there"))
    events = collect(
        watch.Watch().stream(
            core.list_config_map_for_all_namespaces,
            resource_version=start,
            field_selector="metadata.name!=kube-root-ca.crt",
            timeout_seconds=1,
        ),
        2,
    )
    assert {(e["object"].metadata.namespace, e["object"].metadata.name) for e in events} == {
        (namespace, "here"),
        (other, "there"),
    }


def test_it_closes_open_watches_on_stop(own_emulator):
    with api_for(own_emulator) as api:
        core = client.CoreV1Api(api)
        finished = threading.Event()

        def follow():
            try:
                list(watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=60))
            except Exception:  # noqa: BLE001, S110 - a reset connection is fine here: we only wait for the end
                pass
            finished.set()

        threading.Thread(target=follow, daemon=True).start()
        eventually(lambda: own_emulator.store.watcher_count() == 1)
        own_emulator.stop()
        assert finished.wait(5)
