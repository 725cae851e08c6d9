"""`pods/{name}/exec` over websockets, driven by the official client's `kubernetes.stream.stream`."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from urllib.parse import urlencode

import pytest
import yaml
from kubernetes import client
from kubernetes.stream import stream
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from cluster_emulator import ClusterEmulator
from cluster_emulator.execution import V4, V5
from tests.conftest import need_service
from tests.support import alive

from .conftest import apply, eventually, make_namespace, statefulset

SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def running_pod(core: client.CoreV1Api, namespace: str, name: str = "box", **container) -> dict:
    spec = {
        "containers": [
            {
                "name": "web",
                "image": "python:3.12-slim",
                "ports": [{"containerPort": 8000}],
                "workingDir": "/app",
                "env": [
                    {"name": "GREETING", "value": "hello"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    # Like Kubernetes: $(VAR) names variables defined before it.
                    {"name": "WHO", "value": "$(GREETING) from $(POD_NAME) $(LATER)"},
                    {"name": "LATER", "value": "x"},
                    {"name": "DATA_DIR", "value": "/data/files"},
                ],
                "volumeMounts": [{"name": "code", "mountPath": "/app"}, {"name": "data", "mountPath": "/data"}],
                **container,
            }
        ],
        "volumes": [{"name": "code", "emptyDir": {}}, {"name": "data", "emptyDir": {}}],
    }
    core.create_namespaced_pod(namespace, {"metadata": {"name": name}, "spec": spec})
    eventually(
        lambda: core.read_namespaced_pod(name, namespace).status.container_statuses[0].state.running,
        message="the container runs",
    )
    return spec


def exec_ws(core, name, namespace, command, **options):
    defaults = {"stdin": False, "stdout": True, "stderr": True, "tty": False}
    return stream(
        core.connect_get_namespaced_pod_exec,
        name,
        namespace,
        command=command,
        _preload_content=False,
        **{**defaults, **options},
    )


def refusal(exc: client.ApiException) -> dict:
    """The Status of a refused upgrade: the official client puts it at the end of `reason`."""
    return json.loads(exc.reason.split(" -+-+- ")[-1])


def finish(ws, timeout: float = 10) -> dict:
    ws.run_forever(timeout=timeout)
    assert not ws.is_open(), "the stream did not end"
    return yaml.safe_load(ws.peek_channel(3))


def test_it_runs_the_command_in_the_pods_directory_with_its_environment(core, namespace):
    running_pod(core, namespace)
    ws = exec_ws(
        core, "box", namespace, ["sh", "-c", 'echo "$WHO"; pwd; echo "$DATA_DIR"; echo oops >&2; echo $HOSTNAME']
    )
    status = finish(ws)
    out = ws.read_stdout().splitlines()
    assert status == {"metadata": {}, "status": "Success"}
    assert out[0] == "hello from box $(LATER)"
    root = out[1].rsplit("/app", 1)[0]
    assert out[1] == f"{root}/app" and out[1].endswith(f"{namespace}/pods/box/app")
    assert out[2] == f"{root}/data/files"
    assert out[3] == "box"
    assert ws.read_stderr() == "oops\n"


def test_it_keeps_files_written_on_a_volume_for_the_next_exec(core, namespace):
    running_pod(core, namespace)
    finish(exec_ws(core, "box", namespace, ["sh", "-c", "echo kept > notes.txt"]))
    ws = exec_ws(core, "box", namespace, ["cat", "/app/notes.txt"])
    finish(ws)
    # Absolute paths are this machine's: a shell in the emulator is a shell here. In the pod's directory:
    assert ws.read_stdout() == ""
    ws = exec_ws(core, "box", namespace, ["cat", "notes.txt"])
    finish(ws)
    assert ws.read_stdout() == "kept\n"


def test_it_reports_a_non_zero_exit_code_as_the_kubelet_does(core, namespace):
    running_pod(core, namespace)
    ws = exec_ws(core, "box", namespace, ["sh", "-c", "exit 3"])
    status = finish(ws)
    assert status == {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }
    assert ws.returncode == 3  # as the official client reads it


def test_it_says_when_the_command_cannot_be_found(core, namespace):
    running_pod(core, namespace)
    status = finish(exec_ws(core, "box", namespace, ["no-such-program-here"]))
    assert status["status"] == "Failure" and status["reason"] == "InternalError" and status["code"] == 500
    assert 'exec: "no-such-program-here": executable file not found in $PATH' in status["message"]


def test_it_streams_stdin_until_the_client_closes_it(core, namespace):
    running_pod(core, namespace)
    ws = exec_ws(core, "box", namespace, ["sh", "-c", "wc -c; echo done"], stdin=True)
    assert ws.subprotocol == "v5.channel.k8s.io"
    payload = os.urandom(256 * 1024).hex()  # 512 KiB of text (the client writes str)
    ws.write_stdin(payload)
    ws.close_channel(0)
    status = finish(ws)
    assert status["status"] == "Success"
    assert ws.read_stdout().split() == [str(len(payload)), "done"]


def test_it_gives_a_terminal_with_its_size_when_asked_for_a_tty(core, namespace):
    running_pod(core, namespace)
    ws = exec_ws(core, "box", namespace, ["sh", "-c", "read line; stty size; tty; echo $line"], stdin=True, tty=True)
    ws.write_channel(4, json.dumps({"Width": 101, "Height": 37}))
    ws.write_stdin("go\n")
    status = finish(ws)
    lines = [line.strip() for line in ws.read_stdout().splitlines()]
    assert status["status"] == "Success"
    assert lines[0] == "go"  # the terminal echoes what was typed
    assert lines[1] == "37 101"
    assert lines[2].startswith("/dev/pts/")
    assert ws.read_stderr() == ""  # with a tty, stderr is the terminal


def test_it_runs_sftp_server_with_binary_stdin_and_stdout(core, namespace):
    if not os.path.exists(SFTP_SERVER):
        need_service(f"{SFTP_SERVER} (Debian: apt-get install openssh-sftp-server)")
    running_pod(core, namespace)
    ws = exec_ws(core, "box", namespace, [SFTP_SERVER], stdin=True, stderr=False)
    ws.write_channel(0, struct.pack(">IBI", 5, 1, 3))  # SSH_FXP_INIT, version 3
    reply = b""
    while len(reply) < 9:
        ws.update(timeout=5)
        reply += ws.read_channel(1).encode("latin-1") if ws.peek_channel(1) else b""
    length, kind, version = struct.unpack(">IBI", reply[:9])
    assert (kind, version) == (2, 3)  # SSH_FXP_VERSION 3
    ws.close_channel(0)
    assert finish(ws)["status"] == "Success"


def test_it_runs_an_init_step_providing_sftp_server_from_this_machine(core, namespace):
    """The image an init step copies sftp-server from is this machine; the copy lands in the pod's volume."""
    if not os.path.exists(SFTP_SERVER):
        need_service(f"{SFTP_SERVER} (Debian: apt-get install openssh-sftp-server)")
    tools = {"name": "tools", "mountPath": "/opt/tools"}
    spec = {
        "initContainers": [
            {
                "name": "sftp",
                "image": "debian:12.11-slim",
                "command": ["sh", "-c", f'cp {SFTP_SERVER} "$0/sftp-server"', "/opt/tools"],
                "volumeMounts": [tools],
            }
        ],
        "containers": [{"name": "web", "image": "python:3.12-slim", "volumeMounts": [tools]}],
        "volumes": [{"name": "tools", "emptyDir": {}}],
    }
    core.create_namespaced_pod(namespace, {"metadata": {"name": "box"}, "spec": spec})
    eventually(
        lambda: core.read_namespaced_pod("box", namespace).status.container_statuses[0].state.running,
        message="the container runs",
    )
    ws = exec_ws(
        core, "box", namespace, ["sh", "-c", 'cmp "$DIPLOI_EMULATED_ROOT/opt/tools/sftp-server" "$0"', SFTP_SERVER]
    )
    assert finish(ws)["status"] == "Success", ws.read_stderr()


def test_it_ends_the_stream_with_a_status_when_the_pod_is_deleted(emulator, core, namespace):
    running_pod(core, namespace)
    ws = exec_ws(core, "box", namespace, ["sleep", "60"])
    core.delete_namespaced_pod("box", namespace)
    status = finish(ws, timeout=10)
    assert status["status"] == "Failure" and status["reason"] == "InternalError"
    # Either the deletion reached the stream first or the pod was already gone when its process was reaped.
    message = status["message"]
    assert f'pod "{namespace}/box" is being deleted' in message or f'pod "{namespace}/box" was deleted' in message
    eventually(lambda: not emulator.files.pod_dir(namespace, "box").exists(), message="its directory is gone")


def test_it_keeps_a_claims_files_when_a_statefulset_recreates_the_pod(apps, core, namespace):
    apply(apps.patch_namespaced_stateful_set, "db", namespace, body=statefulset("db", namespace))
    eventually(lambda: core.read_namespaced_pod("db-0", namespace).status.container_statuses[0].state.running)
    first = core.read_namespaced_pod("db-0", namespace).metadata.uid
    finish(exec_ws(core, "db-0", namespace, ["sh", "-c", "echo kept > data/on-claim; echo lost > on-root"]))
    core.delete_namespaced_pod("db-0", namespace, grace_period_seconds=0)

    def recreated():
        pod = core.read_namespaced_pod("db-0", namespace)
        return pod.metadata.uid != first and pod.status.container_statuses[0].state.running

    eventually(recreated, timeout=10, message="db-0 is back")
    ws = exec_ws(core, "db-0", namespace, ["sh", "-c", "cat data/on-claim; ls"])
    finish(ws)
    assert ws.read_stdout().split() == ["kept", "data"]  # the claim's data stays, the rest is new


def test_it_refuses_an_unknown_pod_container_or_a_pod_not_running(core, namespace):
    with pytest.raises(client.ApiException) as unknown:
        exec_ws(core, "nope", namespace, ["true"])
    assert "404" in unknown.value.reason
    assert refusal(unknown.value)["message"] == 'pods "nope" not found'

    running_pod(core, namespace)
    with pytest.raises(client.ApiException) as wrong:
        stream(core.connect_get_namespaced_pod_exec, "box", namespace, container="db", command=["true"], stdout=True)
    assert refusal(wrong.value) | {"details": None} == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "container db is not valid for pod box",
        "reason": "BadRequest",
        "code": 400,
        "details": None,
    }

    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "stuck"},
            "spec": {
                "containers": [{"name": "web", "image": "nginx", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "missing"}}],
            },
        },
    )
    with pytest.raises(client.ApiException) as pending:
        exec_ws(core, "stuck", namespace, ["true"])
    assert "400" in pending.value.reason
    assert refusal(pending.value)["message"] == "pod stuck does not have a host assigned"


def test_it_records_exec_as_get_and_create_on_pods_exec(emulator, core, namespace):
    running_pod(core, namespace)
    emulator.audit.enable()
    try:
        finish(exec_ws(core, "box", namespace, ["true"]))
        records = [r for r in emulator.audit.records() if r.subresource == "exec"]
    finally:
        emulator.audit.disable()
    assert [(r.verbs, r.rbac_resource, r.namespace, r.name) for r in records] == [
        (("get", "create"), "pods/exec", namespace, "box")
    ]


def test_it_refuses_exec_when_listening_beyond_loopback_unless_allowed():
    for allowed in (False, True):
        emu = ClusterEmulator(host="0.0.0.0", speed="fast", allow_remote_exec=allowed).start()
        try:
            configuration = emu.configuration()
            configuration.host = f"http://127.0.0.1:{emu.port}"
            with client.ApiClient(configuration) as api:
                core = client.CoreV1Api(api)
                namespace = make_namespace(core)
                running_pod(core, namespace)
                if allowed:
                    ws = exec_ws(core, "box", namespace, ["echo", "ran"])
                    finish(ws)
                    assert ws.read_stdout() == "ran\n"
                else:
                    with pytest.raises(client.ApiException) as refused:
                        exec_ws(core, "box", namespace, ["echo", "ran"])
                    body = refusal(refused.value)
                    assert body["code"] == 403 and body["reason"] == "Forbidden"
                    assert "listens on 0.0.0.0" in body["message"] and "--allow-remote-exec" in body["message"]
        finally:
            emu.stop()


def raw_exec(emulator, namespace: str, command: list[str], protocols: list[str], **flags: str):
    """A plain websocket client, for what the official client will not send."""
    query = urlencode([("command", part) for part in command] + [(k, v) for k, v in flags.items()])
    url = f"ws://127.0.0.1:{emulator.port}/api/v1/namespaces/{namespace}/pods/box/exec?{query}"
    return connect(url, subprotocols=protocols, open_timeout=10)


def test_it_speaks_v4_where_channel_255_means_nothing(emulator, core, namespace):
    running_pod(core, namespace)
    with raw_exec(emulator, namespace, ["sh", "-c", "cat; exit 4"], [V4], stdin="true", stdout="true") as ws:
        assert ws.subprotocol == V4
        ws.send(b"\x00hello")
        ws.send(b"\xff\x00")  # v5's stdin close: on v4 not a channel at all, so cat keeps reading
        assert ws.recv(timeout=5) == b"\x01hello"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)
    # The client left: the command was killed (no status to send to anyone).


def test_it_refuses_a_client_offering_no_channel_protocol(emulator, core, namespace):
    running_pod(core, namespace)
    with pytest.raises(InvalidStatus) as refused:
        raw_exec(emulator, namespace, ["true"], ["base64.channel.k8s.io"], stdout="true")
    assert refused.value.response.status_code == 400
    assert json.loads(refused.value.response.body)["message"] == (
        "none of the websocket subprotocols offered (base64.channel.k8s.io) is supported: "
        "use v5.channel.k8s.io or v4.channel.k8s.io"
    )


@pytest.mark.parametrize("how", ["closes", "sends an unmasked frame"])
def test_it_kills_the_command_when_the_client_goes_away(emulator, core, namespace, how):
    running_pod(core, namespace)
    with raw_exec(emulator, namespace, ["sh", "-c", "echo $$; exec sleep 60"], [V5], stdout="true", stdin="true") as ws:
        pid = int(ws.recv(timeout=5)[1:])
        assert alive(pid)
        if how == "closes":
            ws.close()
        else:
            ws.socket.sendall(b"\x82\x02\x00x")  # a binary frame without the mask clients must set
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
    eventually(lambda: not alive(pid), message=f"process {pid} is gone")


def test_it_ends_the_stream_when_the_container_crashes(emulator, core, namespace):
    running_pod(core, namespace)
    ws = exec_ws(core, "box", namespace, ["sleep", "60"])
    emulator.faults.crash(namespace)
    status = finish(ws, timeout=10)
    assert status["status"] == "Failure" and status["reason"] == "InternalError"
    assert f'container "web" of pod "{namespace}/box" stopped (it restarted or exited)' in status["message"]


def test_it_cuts_off_a_client_that_never_answers_the_closing_handshake(emulator, core, namespace):
    running_pod(core, namespace)
    sock = socket.create_connection(("127.0.0.1", emulator.port), timeout=15)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /api/v1/namespaces/{namespace}/pods/box/exec?command=true&stdout=true HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {V5}\r\n\r\n"
        ).encode()
    )
    received = b""
    started = time.monotonic()
    while chunk := sock.recv(4096):  # the answer, the Status frame, the close frame, then nothing from us
        received += chunk
    sock.close()
    assert received.startswith(b"HTTP/1.1 101 Switching Protocols")
    assert b'\x03{"metadata": {}, "status": "Success"}' in received
    assert time.monotonic() - started < 12  # cut off after the close timeout (5 s), not held open
