"""Starting, stopping and running several emulators in one process."""

from __future__ import annotations

import socket
import threading

import pytest
from kubernetes import client

from cluster_emulator import ClusterEmulator

from .conftest import api_for, apply, deployment, eventually


def _emulator_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("cluster-emulator")}


def test_it_runs_several_emulators_and_stops_them_cleanly():
    baseline = _emulator_threads()
    first, second = ClusterEmulator(), ClusterEmulator()
    first.start()
    second.start()
    try:
        assert first.port != second.port
        for emu in (first, second):
            with api_for(emu) as api:
                client.CoreV1Api(api).create_namespaced_config_map("default", {"metadata": {"name": "mine"}})
                apply(
                    client.AppsV1Api(api).patch_namespaced_deployment,
                    "web",
                    "default",
                    body=deployment("web", "default"),
                )
        assert len(first.snapshot()["configmaps"]) == len(second.snapshot()["configmaps"])
    finally:
        first.stop()
        second.stop()
    eventually(lambda: _emulator_threads() <= baseline, timeout=20, message="emulator threads gone")
    for emu in (first, second):
        with socket.socket() as sock:
            sock.bind((emu.host, emu.port))  # the port was released


def test_it_works_as_a_context_manager():
    with ClusterEmulator(speed="realistic") as emu:
        assert emu.is_up and emu.timing.pod_start_delay >= 1
        with api_for(emu) as api:
            assert client.CoreV1Api(api).read_namespace("default").status.phase == "Active"
    assert not emu.is_up


def test_it_takes_overrides_of_single_delays():
    emu = ClusterEmulator(speed="fast", pod_start_delay=0.5, ready_delay=0.0)
    assert emu.timing.pod_start_delay == 0.5 and emu.timing.ready_delay == 0.0
    with pytest.raises(TypeError):
        ClusterEmulator(not_a_delay=1)
    with pytest.raises(ValueError):
        ClusterEmulator(speed="ludicrous")


def test_it_snapshots_the_stored_objects(emulator):
    snapshot = emulator.snapshot()
    assert {n["metadata"]["name"] for n in snapshot["namespaces"]} >= {"default", "kube-system"}
    assert "deployments.apps" in snapshot
