"""`pods/{name}/portforward` over websockets, driven by the official client's `kubernetes.stream.portforward`."""

from __future__ import annotations

import http.client
import json

import pytest
from kubernetes import client
from kubernetes.stream import portforward
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from .test_exec import refusal, running_pod


def forward(core, name: str, namespace: str, ports: str):
    return portforward(core.connect_get_namespaced_pod_portforward, name, namespace, ports=ports)


def http_get(pf, port: int, path: str) -> tuple[int, dict[str, str], str]:
    """An HTTP/1.1 exchange over the forwarded socket, with the standard library's client."""
    connection = http.client.HTTPConnection("pod", port)
    connection.sock = pf.socket(port)
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read().decode()


def test_it_forwards_to_a_labelled_stand_in_for_each_declared_port(core, namespace):
    running_pod(core, namespace, ports=[{"containerPort": 8000}, {"containerPort": 5432}])
    pf = forward(core, "box", namespace, "8000,5432")
    try:
        status, headers, body = http_get(pf, 8000, "/first")
        assert status == 200 and headers["X-Diploi-Emulated"] == "stand-in"
        assert f"port 8000 of pod {namespace}/box (container web)" in body
        assert "No real process runs in an emulated pod" in body and "GET /first" in body
        # Keep-alive: a second request on the same forwarded connection.
        status, _, body = http_get(pf, 8000, "/second")
        assert status == 200 and "GET /second" in body
        status, _, body = http_get(pf, 5432, "/")
        assert status == 200 and "port 5432" in body
    finally:
        pf.close()


def test_it_reports_connection_refused_on_a_port_nothing_serves(core, namespace):
    running_pod(core, namespace)
    pf = forward(core, "box", namespace, "9999")
    sock = pf.socket(9999)
    sock.setblocking(True)
    sock.settimeout(5)
    assert sock.recv(100) == b""
    error = pf.error(9999)
    assert error.startswith("error forwarding port 9999 to pod box, uid ")
    assert error.endswith("connect: connection refused")
    pf.close()


def test_it_refuses_an_unknown_pod_and_bad_ports(emulator, core, namespace):
    with pytest.raises(client.ApiException) as unknown:
        forward(core, "nope", namespace, "8000")
    assert refusal(unknown.value)["message"] == 'pods "nope" not found'
    running_pod(core, namespace)
    # The official client checks ports itself: a plain websocket client sends what it is given.
    url = f"ws://127.0.0.1:{emulator.port}/api/v1/namespaces/{namespace}/pods/box/portforward"
    for ports, message in (
        ("http", 'unable to parse "http" as a port: invalid syntax'),
        ("70000", "port 70000 must be > 0 and < 65536"),
        ("", "at least one port must be specified"),
    ):
        with pytest.raises(InvalidStatus) as bad:
            connect(f"{url}?ports={ports}", subprotocols=["v4.channel.k8s.io"]).close()
        assert bad.value.response.status_code == 400
        assert json.loads(bad.value.response.body)["message"] == message


def test_it_records_portforward_as_get_and_create_on_pods_portforward(emulator, core, namespace):
    running_pod(core, namespace)
    emulator.audit.enable()
    try:
        pf = forward(core, "box", namespace, "8000")
        http_get(pf, 8000, "/")
        pf.close()
        records = [r for r in emulator.audit.records() if r.subresource == "portforward"]
    finally:
        emulator.audit.disable()
    assert [(r.verbs, r.rbac_resource, r.namespace, r.name) for r in records] == [
        (("get", "create"), "pods/portforward", namespace, "box")
    ]
