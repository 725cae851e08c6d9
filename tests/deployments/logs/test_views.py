"""The Logs tab and the download, through the test client against the emulator."""

from __future__ import annotations

import time

import pytest

from deployments.models import Role
from tests.deployments.logs.conftest import with_log_source

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


def test_it_downloads_what_was_printed_since_a_moment(running, emulator, developer_client):
    import time
    from datetime import UTC, datetime

    found = running()
    pod = found.running_pods()[0]
    namespace, container = found.deployment.namespace, found.component
    emulator.logs.write(namespace, pod, container, 0, "before the moment")
    time.sleep(0.2)
    moment = datetime.now(UTC).replace(tzinfo=None).isoformat()  # as the page's UTC field sends it
    time.sleep(0.2)
    emulator.logs.write(namespace, pod, container, 0, "after the moment\nand more")
    response = developer_client.get(f"/deployments/{found.deployment.pk}/logs.txt?pod={pod}&since={moment}")
    assert response.status_code == 200
    lines = [line.split(" ", 1)[1] for line in response.content.decode().splitlines()]
    assert lines == ["after the moment", "and more"]
    assert response["Content-Disposition"].endswith('-since.log"')


@pytest.mark.parametrize(
    ("since", "message"), [("yesterday", "such as 2026-12-02T14:30"), ("2999-01-01T00:00", "has not come yet")]
)
def test_a_bad_since_gets_a_clear_400(running, developer_client, since, message):
    found = running()
    pod = found.running_pods()[0]
    response = developer_client.get(f"/deployments/{found.deployment.pk}/logs.txt?pod={pod}&since={since}")
    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_templates_named_sources_are_the_entries_and_the_first_opens(running, client, make_member):
    found = running(template="fastapi-redis")
    client.force_login(make_member(Role.VIEWER))
    body = client.get(f"/deployments/{found.deployment.pk}/logs/").content.decode()
    names = ["FastAPI", "Redis", "Redis commands"]
    assert all(f"?source={name.replace(' ', '%20')}" in body for name in names)
    assert 'data-source="FastAPI"' in body and "<h2>Logs: FastAPI" in body
    body = client.get(f"/deployments/{found.deployment.pk}/logs/?source=Redis%20commands").content.decode()
    assert "What <code>redis-cli monitor</code> prints in redis" in body
    assert "Download last" not in body and "Download 5 s of its output" in body  # not the log API's download


def test_a_named_source_of_the_containers_output_downloads_from_the_log_api(running, developer_client):
    found = running(template="fastapi-redis")
    url = f"/deployments/{found.deployment.pk}/logs.txt"
    response = developer_client.get(f"{url}?source=FastAPI&lines=5")
    assert response.status_code == 200 and "listening" in response.content.decode()


def test_a_file_source_downloads_the_files_last_lines(running, developer_client, tmp_path):
    found = running()
    log_file = tmp_path / "app.log"
    log_file.write_text("".join(f"request {n}\n" for n in range(1200)))
    with_log_source(found.deployment, name="App log", component=found.component, path=str(log_file))
    url = f"/deployments/{found.deployment.pk}/logs.txt?source=App%20log"

    response = developer_client.get(f"{url}&lines=3")

    assert response.status_code == 200
    assert response.content.decode() == "request 1197\nrequest 1198\nrequest 1199\n"
    assert response["Content-Disposition"] == f'attachment; filename="{found.deployment.name}-app-log.log"'
    lines = developer_client.get(url).content.decode().splitlines()  # the default: the last 1000
    assert len(lines) == 1000 and lines[0] == "request 200"
    page = developer_client.get(f"/deployments/{found.deployment.pk}/logs/?source=App%20log").content.decode()
    assert "Download the file's last 1000 lines" in page and "<code>tail -n 1000</code>" in page


def test_a_command_source_downloads_what_one_bounded_run_prints(running, developer_client, monkeypatch):
    from deployments.logs import views

    found = running()
    for name, command in [
        ("Once", ["sh", "-c", "echo one; echo two >&2; exit 3"]),
        ("Endless", ["sh", "-c", "echo start; exec sleep 60"]),
        ("Chatty", ["sh", "-c", "while :; do echo tick; done"]),
        ("Missing", ["no-such-program-here"]),
    ]:
        with_log_source(found.deployment, name=name, component=found.component, command=command)
    url = f"/deployments/{found.deployment.pk}/logs.txt?source="
    monkeypatch.setattr(views, "COMMAND_DOWNLOAD_SECONDS", 1)

    response = developer_client.get(f"{url}Once")
    # stdout and stderr, each line whole (they are two pipes: which comes first is not defined)
    assert response.status_code == 200 and sorted(response.content.decode().splitlines(keepends=True)) == [
        "one\n",
        "two\n",
    ]

    started = time.monotonic()
    response = developer_client.get(f"{url}Endless")
    assert response.status_code == 200 and response.content.decode() == "start\n"
    assert time.monotonic() - started < 5  # stopped after its second, not after the command's minute

    response = developer_client.get(f"{url}Chatty&lines=10")
    assert response.status_code == 200 and response.content.decode() == "tick\n" * 10

    response = developer_client.get(f"{url}Missing")
    assert response.status_code == 400 and "could not be run" in response.content.decode()
    assert "no-such-program-here" in response.content.decode()

    response = developer_client.get(f"{url}Once&since=2026-12-01T00:00")
    assert response.status_code == 400 and "no timestamps" in response.content.decode()

    page = developer_client.get(f"/deployments/{found.deployment.pk}/logs/?source=Once").content.decode()
    assert "Download 1 s of its output" in page and "gives what it prints in 1 s (at most 1000 lines)" in page
