"""Shared fixtures: people, teams and logged-in clients on the real database."""

from __future__ import annotations

import itertools
import os

import pytest
from django.contrib.auth import get_user_model

from deployments.models import Membership, Role, Team

_counter = itertools.count(1)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_service(reason: str) -> None:
    """Skip (saying why) on a newcomer's machine; fail in CI, where every service must be there."""
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _fast_password_hashing(request, settings):
    """The default hasher costs a quarter second a user; tests do not need its strength.

    Not for browser tests: Diploi's own processes check their passwords with the real settings.
    """
    if "browser" not in request.keywords:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _process_name_restored():
    """Commands run in-process (watch_cluster, standalone) name the process; the next test starts as before."""
    from diploi_site import process

    before = process._name
    yield
    process._name = before


# Plain functions behind the fixtures below, for fixtures of a wider scope (a module's shared rows).


def create_user(username: str | None = None, *, password: str = "correct horse battery", **extra):
    username = username or f"user{next(_counter)}"
    return get_user_model().objects.create_user(username=username, password=password, **extra)


def create_team() -> Team:
    return Team.objects.create(name="Acme", slug=f"acme-{next(_counter)}")


def create_member(team: Team, role: str = Role.DEVELOPER, *, username: str | None = None):
    user = create_user(username)
    Membership.objects.create(team=team, user=user, role=role)
    return user


def load_catalog() -> dict:
    """The shipped templates, loaded as `sync_templates` loads them, by slug."""
    from templates_catalog.loader import sync_catalog
    from templates_catalog.models import Template

    report = sync_catalog()
    assert not report.failed, report.summary()
    return {template.slug: template for template in Template.objects.select_related("current_version")}


def create_project(catalog: dict, team: Team, template: str = "django-postgres", *, slug: str | None = None):
    from deployments.models import Project

    slug = slug or f"shop{next(_counter)}"
    return Project.objects.create(
        team=team,
        name=slug.capitalize(),
        slug=slug,
        template=catalog[template],
        repository="https://github.com/acme/shop.git",
    )


@pytest.fixture
def make_user(db):
    return create_user


@pytest.fixture
def team(db):
    return create_team()


@pytest.fixture
def make_member(make_user, team):
    def make(role: str = Role.DEVELOPER, *, of=None, username: str | None = None):
        return create_member(of or team, role, username=username)

    return make


@pytest.fixture
def developer(make_member):
    return make_member(Role.DEVELOPER)


@pytest.fixture
def developer_client(client, developer):
    client.force_login(developer)
    return client


@pytest.fixture
async def close_thread_connections():
    """Close the database connection Channels' sync_to_async thread opened, after an async test.

    Left open, it keeps PostgreSQL from dropping the test database.
    """
    from asgiref.sync import sync_to_async
    from django.db import connections

    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def emulator(settings):
    """A fresh cluster emulator (fast controllers), and Diploi pointed at it."""
    from cluster_emulator import ClusterEmulator
    from deployments.cluster.connection import reset_cluster

    emu = ClusterEmulator(speed="fast").start()
    settings.KUBE_API_URL = emu.url
    reset_cluster()
    yield emu
    reset_cluster()
    emu.stop()


@pytest.fixture
def catalog(db):
    """The shipped templates, loaded as `sync_templates` loads them."""
    return load_catalog()


@pytest.fixture
def make_project(catalog, team, make_user):
    def make(template: str = "django-postgres", *, slug: str | None = None, of=None):
        return create_project(catalog, of or team, template, slug=slug)

    return make


@pytest.fixture
def worker(transactional_db, emulator, tmp_path):
    """A real Celery worker consuming Diploi's tasks.

    Scaled out (REDIS_URL set, as in CI): a `celery worker` process on the test
    database and the test's emulator. Embedded: a worker thread on the
    in-memory transport, as standalone mode runs it.
    """
    from deployments.tasks import reconcile_deployment  # noqa: F401 - registers the tasks
    from diploi_site.celery import app as celery_app

    celery_app.control.purge()
    if os.environ.get("REDIS_URL"):
        from tests.stack import DiploiProcess

        process = DiploiProcess.worker(kube_api_url=emulator.url, log=tmp_path / "worker.log").start()
        yield process
        process.stop()
    else:
        from diploi_site.embedded import EmbeddedWorker

        embedded = EmbeddedWorker(celery_app, concurrency=4)
        embedded.start()
        yield embedded
        embedded.stop()


FAST_STATUS = {
    "STATUS_GRACE_SECONDS": "2",
    "STATUS_STALE_SECONDS": "2",
    "CPU_SAMPLE_SECONDS": "2",
    "APP_STATUS_SECONDS": "1",
    "APP_STATUS_GRACE_SECONDS": "2",
    # An operation the cluster never shows done fails this long after its apply (600 s by default).
    "OPERATION_TIMEOUT_SECONDS": "30",
    # The watcher's full pass, which notices grace periods and timeouts running out (10 s by default):
    # every second, as the watcher thread of the embedded mode below does it.
    "STATUS_RECOMPUTE_SECONDS": "1",
}


@pytest.fixture
def watcher(transactional_db, emulator, tmp_path, settings, request):
    """The cluster watcher: a `watch_cluster` process when scaled out (CI), else a thread.

    A test may shorten its timings further with ``@pytest.mark.stack_env(NAME="seconds")``.
    """
    marker = request.node.get_closest_marker("stack_env")
    env = {**FAST_STATUS, **(marker.kwargs if marker else {})}
    for name, value in env.items():
        setattr(settings, name, int(value))
    if os.environ.get("REDIS_URL"):
        from tests.stack import DiploiProcess

        process = DiploiProcess.watcher(kube_api_url=emulator.url, log=tmp_path / "watcher.log", env=env).start()
        yield process
        process.stop()
    else:
        from deployments.cluster.connection import get_cluster
        from deployments.watcher import ClusterWatcher

        thread = ClusterWatcher(get_cluster, coalesce=0.05, recompute_every=1).start()
        yield thread
        thread.stop()
