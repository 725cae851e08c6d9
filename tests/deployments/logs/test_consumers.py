"""The Logs websocket through the ASGI application and the real channel layer, against the emulator."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from deployments.cluster import labels
from deployments.cluster.connection import get_cluster
from deployments.models import Role
from diploi_site.asgi import application
from tests.deployments.logs.conftest import with_log_source
from tests.support import alive, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]


async def open_logs(user, deployment, query: str) -> tuple[WebsocketCommunicator, bool, int | None]:
    comm = WebsocketCommunicator(
        application, f"/ws/deployments/{deployment.pk}/logs/?{query}", headers=[(b"origin", b"http://localhost")]
    )
    comm.scope["user"] = user
    connected, code = await comm.connect(timeout=10)
    return comm, connected, code


async def receive_until(comm, done, timeout: float = 10) -> list[list]:
    """Lines ([pod, stamp, text]) received until ``done(lines)``."""
    lines = []
    deadline = time.monotonic() + timeout
    while not done(lines):
        message = json.loads(await comm.receive_from(timeout=max(deadline - time.monotonic(), 0.01)))
        assert "error" not in message, message
        lines += message.get("lines", [])
    return lines


async def test_a_viewer_reads_lines_as_they_arrive_and_resumes_without_duplicates(running, emulator, make_member):
    found = await sync_to_async(running)()
    viewer = await sync_to_async(make_member)(Role.VIEWER)
    pod = (await sync_to_async(found.running_pods)())[0]
    namespace, container = found.deployment.namespace, found.component
    comm, connected, _ = await open_logs(viewer, found.deployment, f"pod={pod}")
    assert connected
    opened = json.loads(await comm.receive_from(timeout=10))
    assert opened == {"state": "open", "sources": [[pod, container]]}
    # What the cluster held comes first, then the word that it has caught up.
    backlog = await receive_until_caught_up(comm)
    assert any("listening" in line[2] for line in backlog)
    emulator.logs.write(namespace, pod, container, 0, "GET /a 200\nGET /b 200")
    lines = await receive_until(comm, lambda lines: any(line[2] == "GET /b 200" for line in lines))
    await comm.disconnect()
    # The page resumes from the last line it saw (both share one timestamp: seen twice).
    last = lines[-1][1]
    emulator.logs.write(namespace, pod, container, 0, "GET /c 200")
    seen = sum(1 for line in lines if line[1] == last)
    comm, connected, _ = await open_logs(viewer, found.deployment, f"pod={pod}&resume={pod}@{last}~{seen}")
    assert connected
    await comm.receive_from(timeout=10)  # open
    rest = await receive_until_caught_up(comm)
    await comm.disconnect()
    assert [line[2] for line in rest] == ["GET /c 200"]


async def receive_until_caught_up(comm) -> list[list]:
    lines = []
    while (message := json.loads(await comm.receive_from(timeout=10))) != {"state": "caught-up"}:
        assert "error" not in message and "state" not in message, message
        lines += message["lines"]
    return lines


def scale(found, replicas: int) -> None:
    """Scale the component's workload in the cluster (as `kubectl scale` would)."""
    cluster = get_cluster()
    selector = f"{labels.DEPLOYMENT}={found.deployment.pk},{labels.SERVICE}={found.component}"
    for kind in ("Deployment", "StatefulSet"):
        for workload in cluster.list(kind, namespace=found.deployment.namespace, label_selector=selector)[0]:
            cluster.merge_patch(
                kind, workload["metadata"]["name"], {"spec": {"replicas": replicas}}, found.deployment.namespace
            )


async def test_all_replicas_name_their_pod(running, emulator, developer):
    found = await sync_to_async(running)()
    await sync_to_async(scale)(found, 2)
    pods = await sync_to_async(wait_for)(
        lambda: len(found.running_pods()) == 2 and found.running_pods(), timeout=30, what="two replicas"
    )
    comm, connected, _ = await open_logs(developer, found.deployment, f"component={found.component}")
    assert connected
    opened = json.loads(await comm.receive_from(timeout=10))
    assert sorted(source[0] for source in opened["sources"]) == sorted(pods)
    lines = await receive_until(comm, lambda lines: {line[0] for line in lines} == set(pods))
    await comm.disconnect()
    assert all(line[0] in pods for line in lines)


async def test_the_previous_container_after_a_crash(running, emulator, developer):
    found = await sync_to_async(running)()
    pod = (await sync_to_async(found.running_pods)())[0]
    emulator.faults.crash(found.deployment.namespace, {"diploi.io/service": found.component}, exit_code=1)
    await sync_to_async(wait_for)(lambda: found.restarts(pod) >= 1, timeout=30, what="a restart")
    comm, connected, _ = await open_logs(developer, found.deployment, f"pod={pod}&previous=1")
    assert connected
    await comm.receive_from(timeout=10)  # open
    lines, ended = [], []
    while (message := json.loads(await comm.receive_from(timeout=10))) != {"state": "ended"}:
        lines += message.get("lines", [])
        ended += message.get("ended", [])
    assert any("started" in line[2] for line in lines)
    assert ended == [[pod, "end of the log"]]  # a previous container is read to its end, not followed
    await comm.disconnect()


async def test_an_outsider_gets_4404_and_no_stream(running, make_user, emulator):
    found = await sync_to_async(running)()
    stranger = await sync_to_async(make_user)()
    pod = (await sync_to_async(found.running_pods)())[0]
    emulator.audit.enable()
    comm, connected, code = await open_logs(stranger, found.deployment, f"pod={pod}")
    assert not connected and code == 4404
    assert [r for r in emulator.audit.records() if r.subresource == "log"] == []
    assert [r for r in emulator.audit.records() if r.resource == "pods"] == []  # not even a list


@pytest.mark.parametrize(
    ("query", "error"), [("pod=app-9", "has no pod 'app-9'"), ("source=Nope", "has no log source 'Nope'")]
)
async def test_a_pod_or_source_the_deployment_does_not_have_is_refused_with_a_reason(running, developer, query, error):
    found = await sync_to_async(running)()
    comm, connected, _ = await open_logs(developer, found.deployment, query)
    assert connected
    message = json.loads(await comm.receive_from(timeout=10))
    assert error in message["error"]
    assert (await comm.receive_output(timeout=5))["code"] == 4400


async def test_bad_resume_positions_get_a_clear_error(running, developer):
    found = await sync_to_async(running)()
    pod = (await sync_to_async(found.running_pods)())[0]
    comm, connected, _ = await open_logs(developer, found.deployment, f"pod={pod}&resume={pod}@yesterday")
    assert connected
    message = json.loads(await comm.receive_from(timeout=10))
    assert "bad resume position" in message["error"]


async def test_the_cluster_stream_closes_with_the_socket(running, developer):
    import threading

    found = await sync_to_async(running)()
    pod = (await sync_to_async(found.running_pods)())[0]
    name = f"logs {found.deployment.namespace}/{pod}"

    def readers() -> list[str]:
        return [thread.name for thread in threading.enumerate() if thread.name == name]

    comm, connected, _ = await open_logs(developer, found.deployment, f"pod={pod}")
    assert connected
    await comm.receive_from(timeout=10)  # open
    await receive_until(comm, lambda lines: any("listening" in line[2] for line in lines))
    assert readers() == [name]  # following: the container is still running
    await comm.disconnect()
    await sync_to_async(wait_for)(lambda: not readers(), timeout=5, what="the log reader to stop")


async def test_a_chatty_container_is_skipped_not_buffered_and_other_sockets_go_on(running, emulator, developer):
    chatty = await sync_to_async(running)(name="chatty")
    project = await sync_to_async(lambda: chatty.deployment.project)()
    quiet = await sync_to_async(running)(project=project, name="quiet")
    chatty_pod = (await sync_to_async(chatty.running_pods)())[0]
    quiet_pod = (await sync_to_async(quiet.running_pods)())[0]
    loud, _, _ = await open_logs(developer, chatty.deployment, f"pod={chatty_pod}")
    calm, _, _ = await open_logs(developer, quiet.deployment, f"pod={quiet_pod}")
    for comm in (loud, calm):
        await comm.receive_from(timeout=10)  # open
        await receive_until(comm, lambda lines: any("listening" in line[2] for line in lines))
    for chunk in range(4):  # 4,000 lines at once (under the emulator's 5,000 per container), twice the window
        text = "\n".join(f"noise {chunk * 1000 + n}" for n in range(1000))
        emulator.logs.write(chatty.deployment.namespace, chatty_pod, chatty.component, 0, text)
    emulator.logs.write(quiet.deployment.namespace, quiet_pod, quiet.component, 0, "a quiet line")
    await receive_until(calm, lambda lines: any(line[2] == "a quiet line" for line in lines), timeout=20)
    received, skipped = 0, 0
    while True:
        message = json.loads(await loud.receive_from(timeout=10))
        if "lines" not in message:
            continue  # the state message saying it caught up
        received += len(message["lines"])
        skipped += message["skipped"]
        if message["lines"] and message["lines"][-1][2] == "noise 3999":
            break
    assert received + skipped == 4000
    assert skipped > 0  # the window held, and the page was told how much it missed
    for comm in (loud, calm):
        await comm.disconnect()


async def test_a_named_command_source_runs_through_exec_and_a_reconnect_does_not_repeat_its_tail(
    running, make_member, tmp_path
):
    found = await sync_to_async(running)()
    viewer = await sync_to_async(make_member)(Role.VIEWER)
    log_file = tmp_path / "app.log"
    log_file.write_text("booted\nGET /one 200\n")
    await sync_to_async(with_log_source)(
        found.deployment, name="App log", component=found.component, path=str(log_file)
    )
    pod = (await sync_to_async(found.running_pods)())[0]
    comm, connected, _ = await open_logs(viewer, found.deployment, "source=App%20log")
    assert connected
    assert json.loads(await comm.receive_from(timeout=10)) == {"state": "open", "sources": [[pod, found.component]]}
    lines = await receive_until_caught_up(comm)
    assert [(line[0], line[2]) for line in lines] == [(pod, "booted"), (pod, "GET /one 200")]
    with log_file.open("a") as out:
        out.write("GET /two 200\n")
    lines = await receive_until(comm, lambda lines: bool(lines))
    assert [line[2] for line in lines] == ["GET /two 200"]
    await comm.disconnect()

    with log_file.open("a") as out:
        out.write("GET /three 200\n")
    last = lines[-1]
    query = f"source=App%20log&resume={pod}@{last[1]}~1~{quote(last[2])}"
    comm, connected, _ = await open_logs(viewer, found.deployment, query)
    assert connected
    await comm.receive_from(timeout=10)  # open
    rest = await receive_until_caught_up(comm)
    await comm.disconnect()
    assert [line[2] for line in rest] == ["GET /three 200"]


async def test_a_command_that_ends_says_so_and_a_missing_program_gives_its_reason(running, developer):
    found = await sync_to_async(running)()
    await sync_to_async(with_log_source)(
        found.deployment, name="Once", component=found.component, command=["sh", "-c", "echo done; exit 3"]
    )
    await sync_to_async(with_log_source)(
        found.deployment, name="Missing", component=found.component, command=["no-such-program-here"]
    )
    comm, _, _ = await open_logs(developer, found.deployment, "source=Once")
    opened = json.loads(await comm.receive_from(timeout=10))
    pod = opened["sources"][0][0]
    messages = []
    while (message := json.loads(await comm.receive_from(timeout=10))) != {"state": "ended"}:
        messages.append(message)
    lines = [line[2] for m in messages for line in m.get("lines", [])]
    ended = [end for m in messages for end in m.get("ended", [])]
    assert lines == ["done"] and ended == [[pod, "the command exited with status 3"]]
    await comm.disconnect()

    comm, _, _ = await open_logs(developer, found.deployment, "source=Missing")
    await comm.receive_from(timeout=10)  # open
    ended = []
    while (message := json.loads(await comm.receive_from(timeout=10))) != {"state": "ended"}:
        ended += message.get("ended", [])
    assert len(ended) == 1 and "no-such-program-here" in ended[0][1]
    await comm.disconnect()


async def test_viewers_of_a_command_source_share_one_run_that_stops_with_the_last_of_them(
    running, emulator, developer, make_member, tmp_path
):
    found = await sync_to_async(running)()
    viewer = await sync_to_async(make_member)(Role.VIEWER)
    log_file, pid_file = tmp_path / "app.log", tmp_path / "pid"
    log_file.write_text("booted\n")
    script = f"echo $$ > {pid_file}; exec tail -n 5 -F {log_file}"  # the emulator runs it on this machine
    await sync_to_async(with_log_source)(
        found.deployment, name="Tail", component=found.component, command=["sh", "-c", script]
    )

    def execs() -> int:
        return len([r for r in emulator.audit.records() if r.subresource == "exec"])

    emulator.audit.enable()
    before = await sync_to_async(execs)()
    first, _, _ = await open_logs(developer, found.deployment, "source=Tail")
    await first.receive_from(timeout=10)  # open
    assert [line[2] for line in await receive_until_caught_up(first)] == ["booted"]
    second, _, _ = await open_logs(viewer, found.deployment, "source=Tail")
    await second.receive_from(timeout=10)  # open
    # The second viewer's backlog comes from the shared run's window: the command is not run again.
    assert [line[2] for line in await receive_until_caught_up(second)] == ["booted"]
    with log_file.open("a") as out:
        out.write("GET /one 200\n")
    seen = [await receive_until(comm, lambda lines: bool(lines)) for comm in (first, second)]
    assert seen[0] == seen[1] and [line[2] for line in seen[0]] == ["GET /one 200"]  # the same line, same stamp
    assert await sync_to_async(execs)() - before == 1
    pid = int(pid_file.read_text())

    await first.disconnect()
    with log_file.open("a") as out:
        out.write("GET /two 200\n")
    assert [line[2] for line in await receive_until(second, lambda lines: bool(lines))] == ["GET /two 200"]
    assert alive(pid)  # one viewer left: the run goes on

    await second.disconnect()
    await sync_to_async(wait_for)(lambda: not alive(pid), timeout=10, what="the command to stop with the last viewer")
    assert await sync_to_async(execs)() - before == 1


async def test_a_reconnect_to_a_shared_run_resumes_after_its_line_even_when_that_text_repeats(
    running, developer, make_member, tmp_path
):
    found = await sync_to_async(running)()
    viewer = await sync_to_async(make_member)(Role.VIEWER)
    log_file = tmp_path / "app.log"
    log_file.write_text("tick\n")
    await sync_to_async(with_log_source)(found.deployment, name="Ticks", component=found.component, path=str(log_file))
    keeper, _, _ = await open_logs(viewer, found.deployment, "source=Ticks")  # keeps the run going
    await keeper.receive_from(timeout=10)  # open
    await receive_until_caught_up(keeper)
    leaver, _, _ = await open_logs(developer, found.deployment, "source=Ticks")
    await leaver.receive_from(timeout=10)  # open
    (last,) = await receive_until_caught_up(leaver)
    await leaver.disconnect()
    with log_file.open("a") as out:
        out.write("tick\n")  # the same text as the leaver's last line: only its position tells them apart
    await receive_until(keeper, lambda lines: bool(lines))

    query = f"source=Ticks&resume={last[0]}@{last[1]}~1~{quote(last[2])}"
    back, _, _ = await open_logs(developer, found.deployment, query)
    await back.receive_from(timeout=10)  # open
    rest = await receive_until_caught_up(back)
    assert [line[2] for line in rest] == ["tick"] and rest[0][1] != last[1]
    for comm in (keeper, back):
        await comm.disconnect()
