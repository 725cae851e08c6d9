"""Prometheus metrics: each is moved by what it measures, in this process and across processes."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from prometheus_client import REGISTRY

from deployments import lifecycle, services
from deployments.cluster.connection import get_cluster
from deployments.models import Deployment, DeploymentState, DeploymentStatus
from deployments.tasks import reconcile_deployment
from deployments.watcher import ClusterWatcher
from diploi_site.metrics import connect_task_signals, exposition
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[2]


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_it_counts_tasks_by_outcome_and_times_reconciles(db, make_project, developer):
    deployment = services.deployment_create(
        project=make_project("static-nginx"), name="gone", stage="development", actor=developer
    )
    Deployment.objects.filter(pk=deployment.pk).update(state=DeploymentState.DELETED)
    connect_task_signals()
    connect_task_signals()  # a worker is "ready" again after every reconnect: counted once all the same
    name = "deployments.tasks.reconcile_deployment"
    before = sample("diploi_tasks_total", task=name, outcome="succeeded")
    timed = sample("diploi_reconcile_duration_seconds_count", outcome="skipped")
    assert reconcile_deployment.apply(args=[deployment.pk]).get() == "skipped"
    assert sample("diploi_tasks_total", task=name, outcome="succeeded") == before + 1
    assert sample("diploi_reconcile_duration_seconds_count", outcome="skipped") == timed + 1


def test_it_measures_the_watchers_lag_from_event_to_stored_status(transactional_db, emulator, make_project, developer):
    before = sample("diploi_watcher_event_lag_seconds_count")
    watcher = ClusterWatcher(get_cluster, coalesce=0.05, recompute_every=60).start()
    try:
        deployment = services.deployment_create(
            project=make_project("static-nginx"), name="site", stage="development", actor=developer
        )
        lifecycle.reconcile_run(deployment.pk, owner="test")
        wait_for(lambda: DeploymentStatus.objects.filter(deployment=deployment, health="green").exists(), timeout=20)
    finally:
        watcher.stop()
    assert sample("diploi_watcher_event_lag_seconds_count") > before
    assert sample("diploi_watcher_event_lag_seconds_sum") > 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_it_counts_open_websockets(make_project, developer):
    from diploi_site.asgi import application

    project = await database_sync(make_project)
    communicator = WebsocketCommunicator(
        application, f"/ws/projects/{project.pk}/", headers=[(b"origin", b"http://localhost")]
    )
    communicator.scope["user"] = developer
    # Collecting reads deployments from the database too: not from the event loop.
    open_sockets = partial(database_sync, sample, "diploi_websocket_connections", page="project")
    before = await open_sockets()
    connected, _ = await communicator.connect()
    assert connected
    await communicator.receive_from(timeout=30)
    assert await open_sockets() == before + 1
    await communicator.disconnect()
    assert await open_sockets() == before


async def database_sync(function, *args, **kwargs):
    from asgiref.sync import sync_to_async

    return await sync_to_async(function)(*args, **kwargs)


def test_it_adds_up_the_processes_of_a_pod_in_multiprocess_mode(db, tmp_path, monkeypatch):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "diploi_site.settings"}
    count = "from diploi_site.metrics import TASKS; TASKS.labels('t', 'succeeded').inc()"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", f"import django; django.setup(); {count}"], env=env, check=True, cwd=ROOT)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    body, content_type = exposition()
    assert content_type.startswith("text/plain")
    assert 'diploi_tasks_total{outcome="succeeded",task="t"} 2.0' in body.decode()
    # What is read at scrape time is there too.
    assert 'diploi_deployments{health="green"} 0.0' in body.decode()
