"""A deployment's Overview, Status and Activity tabs, restart and describe, through HTTP.

The cluster is the emulator: the deployment is applied by the worker's code
(`lifecycle.reconcile_run`) and observed by the watcher's (`ObjectCache`,
`statuses.status_store`), so the pages show a status tree the real processes
would compute.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from deployments import cpu, lifecycle, services, statuses
from deployments.cluster.connection import get_cluster
from deployments.models import ActivityEntry, Deployment, DeploymentStatus, Operation, Role
from deployments.watcher import INFORMERS, ObjectCache
from tests.support import wait_for


@pytest.fixture
def project(make_project):
    return make_project("fastapi-redis", slug="shop")


@pytest.fixture
def deployment(project, developer):
    return services.deployment_create(
        project=project,
        name="feature-x",
        stage="development",
        actor=developer,
        addons=["redis"],
        custom_domains=["www.example.com"],
    )


def observe(deployment: Deployment) -> str:
    """What the watcher does for one deployment: list our objects, compute and store its status."""
    cluster, cache = get_cluster(), ObjectCache()
    for kind, selector in INFORMERS:
        cache.replace(kind, cluster.list(kind, label_selector=selector)[0])
    statuses.status_store(deployment.pk, cache.observation(deployment.pk, deployment.namespace))
    return DeploymentStatus.objects.get(deployment=deployment).health


@pytest.fixture
def running(deployment, emulator):
    """The deployment applied to the emulator and observed until every service is ready."""
    assert lifecycle.reconcile_run(deployment.pk, owner="test") == "applied"
    wait_for(lambda: observe(deployment) == "green", timeout=20, what="the deployment to turn green")
    return Deployment.objects.get(pk=deployment.pk)


# ----------------------------------------------------------------------------- Overview


def test_it_shows_endpoints_as_https_links(developer_client, deployment):
    page = developer_client.get(reverse("deployment", args=[deployment.pk])).content.decode()

    assert '<a href="https://api-feature-x.shop.diploi.localhost" target="_blank" rel="noopener">' in page
    assert '<a href="https://www.example.com" target="_blank" rel="noopener">' in page
    assert "TLS pending" in page


def test_it_says_tls_is_not_managed_when_the_cluster_has_no_certificate_api(developer_client, running):
    cluster, cache = get_cluster(), ObjectCache()
    for kind, selector in INFORMERS:
        if kind != "Certificate":
            cache.replace(kind, cluster.list(kind, label_selector=selector)[0])
    cache.missing_apis.add("Certificate")  # as the watcher records a 404 on the kind's list
    statuses.status_store(running.pk, cache.observation(running.pk, running.namespace))

    page = developer_client.get(reverse("deployment", args=[running.pk])).content.decode()
    assert "TLS is not managed by this cluster" in page and "TLS pending" not in page


def test_it_shows_the_ssh_command_the_templates_rules_give(developer_client, deployment, settings):
    settings.SSH_HOST = "ssh.example.com"
    settings.SSH_PORT = 2222

    page = developer_client.get(reverse("deployment", args=[deployment.pk])).content.decode()

    assert '<code id="ssh-command-1" class="command">ssh api.feature-x.shop@ssh.example.com -p 2222</code>' in page
    assert 'data-copy="ssh-command-1"' in page
    assert "vscode://vscode-remote/ssh-remote+api.feature-x.shop@ssh.example.com:2222/app" in page
    assert "0 open SSH sessions" in page


def test_it_says_when_the_template_allows_no_ssh_in_a_stage(developer_client, project, developer):
    production = services.deployment_create(project=project, name="live", stage="production", actor=developer)

    page = developer_client.get(reverse("deployment", args=[production.pk])).content.decode()

    assert "The template allows no SSH access in production." in page
    assert "ssh-command-1" not in page


def test_it_shows_the_development_section_only_in_development(developer_client, deployment, project, developer):
    staging = services.deployment_create(project=project, name="stage", stage="staging", actor=developer)

    development_page = developer_client.get(reverse("deployment", args=[deployment.pk])).content.decode()
    staging_page = developer_client.get(reverse("deployment", args=[staging.pk])).content.decode()

    assert 'id="dev-title">Development</h2>' in development_page
    assert "https://github.com/acme/shop.git" in development_page
    assert "uvicorn main:app --reload" in development_page
    assert 'id="dev-title"' not in staging_page


def test_it_draws_the_cpu_chart_without_samples(developer_client, deployment):
    response = developer_client.get(reverse("deployment", args=[deployment.pk]))

    page = response.content.decode()
    assert page.count("No samples yet.") == 6  # CPU and memory, three windows each
    assert "Now: <strong>–</strong>" in page
    assert "<polyline" not in page
    assert [chart.window for chart in response.context["charts"]] == ["minute", "hour", "day"]


def test_it_draws_the_cpu_chart_with_samples(developer_client, deployment):
    DeploymentStatus.objects.create(deployment=deployment)
    now = timezone.now()
    for seconds, millicores in ((40, 120.0), (30, 250.0), (20, 80.0), (10, 1500.0)):
        cpu.cpu_record({deployment.pk: millicores}, now=now - timedelta(seconds=seconds))

    response = developer_client.get(reverse("deployment", args=[deployment.pk]))

    page = response.content.decode()
    assert "Now: <strong>1.50 CPU</strong>" in page
    minute = response.context["charts"][0]
    assert minute.count == 4 and not minute.empty
    assert f'<polyline points="{minute.points}" class="line"/>' in page
    # Against the size over its two pods (api, redis): Small requests 250m and limits 1 CPU each.
    assert (
        "Scale: 0 to 2.40 CPU · 4 points · dashed: request 500m CPU, limit 2.00 CPU (the size, over its pods)" in page
    )
    hour, day = response.context["charts"][1:]  # the same samples, averaged per minute and per quarter hour
    assert 1 <= hour.count <= 2 and 1 <= day.count <= 2
    assert 'aria-label="CPU over the last minute: latest 1.50 CPU, request 500m CPU, limit 2.00 CPU"' in page
    assert "<span>2.40 CPU</span><span>1.20 CPU</span><span>0</span>" in page  # the y axis
    assert "<span>1 minute ago</span><span>now</span>" in page  # the x axis


def test_it_shows_a_new_deployment_as_being_created(developer_client, deployment):
    page = developer_client.get(reverse("deployment", args=[deployment.pk])).content.decode()

    assert "Creating: applying the deployment to the cluster" in page
    assert "In progress" in page  # the colour's word, not the colour alone
    assert "Degraded" not in page  # our own operation under way is not an issue
    for title in ("Storage", "Builds", "Containers", "Services"):
        assert f'<span class="tree-title">{title}</span>' in page


def test_it_shows_the_status_tree_of_a_running_deployment(developer_client, running):
    page = developer_client.get(reverse("deployment", args=[running.pk])).content.decode()

    assert "All services ready" in page
    for node in ("storage", "builds", "containers", "services"):
        assert f'data-node="{node}"' in page
    assert 'data-node="containers" data-health="green"' in page
    assert '<span class="health health-green"><span class="dot" aria-hidden="true"></span>Healthy</span>' in page
    assert 'aria-label="Restart api"' in page and 'aria-label="Restart redis"' in page
    assert reverse("deployment_describe", args=[running.pk, "api"]) in page


def test_it_shows_a_disabled_deployment_as_disabled_with_endpoints_ssh_and_cpu_off(
    developer_client, running, developer
):
    DeploymentStatus.objects.filter(deployment=running).update(cpu_millicores=35)
    services.deployment_update(deployment=running, actor=developer, enabled=False)
    assert lifecycle.reconcile_run(running.pk, owner="test") == "applied"
    seen = set()

    def disabled():
        seen.add(observe(running))
        return "disabled" in seen

    wait_for(disabled, timeout=20, what="the deployment to be disabled")
    assert seen <= {"progress", "disabled"}  # never green while pods still run, never red
    page = developer_client.get(reverse("deployment", args=[running.pk])).content.decode()

    assert '<span class="health health-disabled"><span class="dot" aria-hidden="true"></span>Disabled</span>' in page
    assert "Disabled: nothing runs; enable it in Options to start it again" in page
    assert "All services ready" not in page
    assert '<a href="https://api-feature-x.shop.diploi.localhost"' not in page
    assert "off: the deployment is disabled" in page
    assert 'data-ssh="off"' in page and "ssh api-feature-x@" not in page
    assert "Now: <strong>off (disabled)</strong>" in page and "35m" not in page


def test_it_shows_the_health_timeline_on_the_status_tab(developer_client, running):
    page = developer_client.get(reverse("deployment_status", args=[running.pk])).content.decode()

    timeline = page[page.index('id="health-timeline"') : page.index("</section>", page.index('id="health-timeline"'))]
    assert '<li data-health="green">' in timeline and "All services ready" in timeline
    assert '<li data-health="progress">' in timeline  # it was starting before


def test_it_offers_a_viewer_no_restart(client, make_member, running):
    client.force_login(make_member(Role.VIEWER))

    page = client.get(reverse("deployment", args=[running.pk])).content.decode()

    assert "All services ready" in page
    assert 'aria-label="Restart' not in page
    assert 'aria-label="Describe api"' in page


def test_it_lists_the_observed_volumes_before_a_delete(client, make_member, running):
    client.force_login(make_member(Role.ADMIN))

    page = client.get(reverse("deployment_options", args=[running.pk])).content.decode()

    assert f"the namespace <code>{running.namespace}</code>" in page
    assert "the volume <code>code-api-0</code> (3Gi) of api;" in page
    assert "the volume <code>data-redis-0</code> (1Gi) of redis;" in page


# ----------------------------------------------------------------------------- Status and Activity


def test_it_lists_operations_on_the_status_tab(developer_client, deployment, developer):
    services.deployment_restart(deployment=deployment, actor=developer, service_id="redis")

    response = developer_client.get(reverse("deployment_status", args=[deployment.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert '<td class="operation-what">Restart redis</td>' in page and '<td class="operation-what">Create</td>' in page
    assert page.count(f'<td data-label="Asked by">{developer.username}</td>') == 2
    assert 'class="tree-node card" data-node="storage" data-health="unknown" open' in page  # detailed: all open


def test_it_shows_the_audit_log_on_the_activity_tab(developer_client, deployment, developer):
    services.deployment_update(deployment=deployment, actor=developer, name="feature-z")

    page = developer_client.get(reverse("deployment_activity", args=[deployment.pk])).content.decode()

    assert f"<strong>{developer.username}</strong> Renamed “feature-x” to “feature-z”" in page
    assert f"<strong>{developer.username}</strong> Development deployment “feature-x” created" in page
    assert page.index("Renamed") < page.index("Development deployment")  # newest first
    assert '<td class="operation-what">Apply changes</td>' in page


# ----------------------------------------------------------------------------- restart


def test_it_restarts_one_service_and_says_so(developer_client, deployment, django_capture_on_commit_callbacks):
    url = reverse("deployment_restart", args=[deployment.pk])
    with django_capture_on_commit_callbacks() as callbacks:
        response = developer_client.post(
            url, {"service": "api", "next": reverse("deployment_status", args=[deployment.pk])}
        )

    assert response.status_code == 302
    assert response["Location"] == reverse("deployment_status", args=[deployment.pk])
    operation = deployment.operations.get(kind=Operation.Kind.RESTART)
    assert operation.target == "api" and operation.status == Operation.Status.PENDING
    assert callbacks  # the reconcile and the live update, on commit
    assert "Restarting api." in developer_client.get(response["Location"]).content.decode()


def test_it_answers_an_htmx_restart_with_the_header(developer_client, deployment):
    response = developer_client.post(
        reverse("deployment_restart", args=[deployment.pk]),
        {"service": "redis", "tab": "status"},
        HTTP_HX_REQUEST="true",
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert page.startswith('<section id="deployment-header"')
    assert "Restarting redis…" in page
    assert ActivityEntry.objects.filter(action="deployment.restarted", deployment=deployment).exists()


def test_it_restarts_everything_without_a_service(developer_client, deployment):
    developer_client.post(reverse("deployment_restart", args=[deployment.pk]))

    operation = deployment.operations.get(kind=Operation.Kind.RESTART)
    assert operation.target == ""
    assert "*" in Deployment.objects.get(pk=deployment.pk).restart_marks


def test_it_refuses_to_restart_a_service_the_template_does_not_have(developer_client, deployment):
    response = developer_client.post(reverse("deployment_restart", args=[deployment.pk]), {"service": "nope"})

    assert response.status_code == 409
    assert response.content.decode() == "There is no component or add-on “nope”."
    assert not deployment.operations.filter(kind=Operation.Kind.RESTART).exists()


# ----------------------------------------------------------------------------- describe


def test_it_describes_a_services_live_objects(developer_client, running):
    response = developer_client.get(reverse("deployment_describe", args=[running.pk, "api"]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Live objects of api" in page
    assert "kind: StatefulSet" in page and "kind: Pod" in page
    assert "managedFields" not in page


def test_it_says_when_nothing_of_a_service_runs(developer_client, deployment, emulator):
    page = developer_client.get(reverse("deployment_describe", args=[deployment.pk, "redis"])).content.decode()
    assert f"# Nothing named redis is running in {deployment.namespace}." in page


def test_it_says_when_the_cluster_cannot_be_asked(developer_client, deployment, emulator):
    emulator.faults.fail_requests(status=403, message="forbidden by RBAC")

    response = developer_client.get(reverse("deployment_describe", args=[deployment.pk, "api"]))

    assert response.status_code == 200
    assert "# The cluster could not be asked:" in response.content.decode()


def test_it_refuses_to_describe_a_service_the_template_does_not_have(developer_client, deployment):
    response = developer_client.get(reverse("deployment_describe", args=[deployment.pk, "nope"]))
    assert response.status_code == 404
    assert response.content.decode() == "There is no component or add-on “nope”."


def test_it_draws_memory_beside_cpu_against_the_sizes_request_and_limit(developer_client, deployment):
    DeploymentStatus.objects.create(deployment=deployment)
    now = timezone.now()
    for seconds, mebibytes in ((30, 200), (20, 300), (10, 700)):
        cpu.cpu_record(
            {deployment.pk: 100.0}, memory={deployment.pk: mebibytes * 1024**2}, now=now - timedelta(seconds=seconds)
        )

    response = developer_client.get(reverse("deployment", args=[deployment.pk]))

    page = response.content.decode()
    assert "Now: <strong>700 MiB of 1.00 GiB limit</strong>" in page
    minute = response.context["memory_charts"][0]
    assert (minute.count, minute.latest_label) == (3, "700 MiB")
    assert [mark.label for mark in minute.marks] == ["request 1.00 GiB", "limit 1.00 GiB"]
    assert f'<polyline points="{minute.points}" class="line"/>' in page
    assert 'aria-label="Memory over the last minute: latest 700 MiB, request 1.00 GiB, limit 1.00 GiB"' in page
    assert "<span>1.20 GiB</span><span>614 MiB</span><span>0</span>" in page
    # The limit's level sits where the scale says: 1 GiB of 1.2 GiB from the bottom.
    assert abs(minute.marks[1].y - (120 - 120 / 1.2)) < 0.01


def test_it_draws_a_lone_cpu_sample_as_a_visible_stroke(developer_client, deployment):
    DeploymentStatus.objects.create(deployment=deployment)
    cpu.cpu_record({deployment.pk: 300.0}, now=timezone.now() - timedelta(seconds=5))

    response = developer_client.get(reverse("deployment", args=[deployment.pk]))

    minute = response.context["charts"][0]
    assert minute.count == 1
    first, last = (tuple(map(float, point.split(","))) for point in minute.points.split())
    assert first[1] == last[1] and 0 < last[0] - first[0] <= 12
    assert "Scale: 0 to 2.40 CPU · 1 point ·" in response.content.decode()


# ----------------------------------------------------------------------------- SSH


def test_each_pod_ssh_may_enter_gets_its_own_connect_command(developer_client, running, settings):
    settings.SSH_HOST, settings.SSH_PORT = "ssh.example.com", 2222

    page = developer_client.get(reverse("deployment_status", args=[running.pk])).content.decode()

    # The template lets SSH into api (a StatefulSet in development: pod api-0), not into redis.
    assert '<code id="connect-api-0" class="command">ssh 0.api.feature-x.shop@ssh.example.com -p 2222</code>' in page
    assert 'id="connect-redis-0"' not in page


def test_the_overview_counts_live_ssh_sessions_and_the_activity_tab_lists_them(
    developer_client, deployment, developer, settings
):
    from deployments.ssh.sessions import session_close, session_open
    from tests.deployments.ssh.conftest import target_for

    target = target_for(developer, deployment, "api")
    first = session_open(target=target, pod="api-0", source_address="192.0.2.1:4000")
    session_open(target=target, pod="api-0", source_address="192.0.2.2:4000")
    session_close(session_id=first, exit_status=130, bytes_in=2048, bytes_out=4096, reason="the client closed it")

    overview = developer_client.get(reverse("deployment", args=[deployment.pk])).content.decode()
    activity = developer_client.get(reverse("deployment_activity", args=[deployment.pk])).content.decode()

    assert "1 open SSH session ·" in overview
    assert activity.count('<tr data-session="') == 2
    assert "192.0.2.1:4000" in activity and "the client closed it" in activity and ">130<" in activity
    assert "2.0\xa0KB / 4.0\xa0KB" in activity
