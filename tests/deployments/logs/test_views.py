"""The Logs tab and the download, through the test client against the emulator."""

from __future__ import annotations

import pytest

from deployments.models import Role

pytestmark = pytest.mark.django_db


def test_it_shows_the_logs_tab_to_a_viewer(running, client, make_member):
    found = running()
    client.force_login(make_member(Role.VIEWER))
    pod = found.running_pods()[0]
    response = client.get(f"/deployments/{found.deployment.pk}/logs/?pod={pod}")
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-socket="/ws/deployments/{found.deployment.pk}/logs/"' in body
    assert f'data-pod="{pod}"' in body
    assert "js/logs.js" in body and 'aria-current="page">Logs<' in body


def test_an_outsider_gets_404(running, client, make_user):
    found = running()
    client.force_login(make_user())
    assert client.get(f"/deployments/{found.deployment.pk}/logs/").status_code == 404
    pod = found.running_pods()[0]
    assert client.get(f"/deployments/{found.deployment.pk}/logs.txt?pod={pod}").status_code == 404


def test_it_downloads_the_last_lines_as_text(running, emulator, developer_client):
    found = running()
    pod = found.running_pods()[0]
    namespace, container = found.deployment.namespace, found.component
    emulator.logs.write(namespace, pod, container, 0, "\n".join(f"request {n}" for n in range(50)))
    response = developer_client.get(f"/deployments/{found.deployment.pk}/logs.txt?pod={pod}&lines=3")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    lines = response.content.decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["request 47", "request 48", "request 49"]


@pytest.mark.parametrize(
    ("query", "message"),
    [("lines=lots", "whole number"), ("lines=0", "between 1 and"), ("pod=app-9", "has no pod"), ("", "which pod")],
)
def test_bad_downloads_get_a_clear_400(running, developer_client, query, message):
    found = running()
    response = developer_client.get(f"/deployments/{found.deployment.pk}/logs.txt?{query}")
    assert response.status_code == 400
    assert message in response.content.decode()


def test_a_previous_container_that_never_was_is_a_400_with_the_servers_reason(running, developer_client):
    found = running()
    pod = found.running_pods()[0]
    response = developer_client.get(f"/deployments/{found.deployment.pk}/logs.txt?pod={pod}&previous=1")
    assert response.status_code == 400
    assert "previous terminated container" in response.content.decode()


def test_the_status_tree_links_each_container_to_its_logs(running, developer_client, watcher):
    from tests.support import wait_for

    found = running()
    pod = found.running_pods()[0]
    page = wait_for(
        lambda: (
            (body := developer_client.get(f"/deployments/{found.deployment.pk}/status/").content.decode())
            and f"?pod={pod}&amp;container={found.component}" in body
            and body
        ),
        timeout=30,
        what="the status tree with the pod",
    )
    assert f'aria-label="Logs of {found.component} in {pod}"' in page
