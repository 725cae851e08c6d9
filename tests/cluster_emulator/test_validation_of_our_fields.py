"""The emulator refuses what a real API server refuses in the fields Diploi sets (issue 15, item 14),
in the real server's words: Ingress hosts (a trailing dot, a bad wildcard, an IP), backends, TLS
secret names, NetworkPolicy ports and the 1 MiB Secret cap."""

from __future__ import annotations

import base64

import pytest

from cluster_emulator import validation

from .conftest import apply
from .test_validation import invalid


def ingress(host: str, *, tls_host: str | None = None, port: int = 8000, service: str = "web") -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "public"},
        "spec": {
            "tls": [{"hosts": [tls_host or host], "secretName": "public-tls"}],
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": service, "port": {"number": port}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def put_ingress(networking, namespace, body):
    return apply(networking.patch_namespaced_ingress, "public", namespace, body=body)


def test_it_refuses_an_ingress_host_with_a_trailing_dot_as_a_real_server_does(networking, namespace):
    status = invalid(lambda: put_ingress(networking, namespace, ingress("prod.example.com.")))

    assert status["message"] == (
        'Ingress.networking.k8s.io "public" is invalid: [spec.tls[0].hosts[0]: Invalid value: "prod.example.com.": '
        f'{validation.MSG_SUBDOMAIN}, spec.rules[0].host: Invalid value: "prod.example.com.": '
        f"{validation.MSG_SUBDOMAIN}]"
    )


@pytest.mark.parametrize(
    "host, message",
    [
        ("Prod.example.com", validation.MSG_SUBDOMAIN),
        ("*.*.example.com", validation.MSG_WILDCARD),
        ("a*.example.com", validation.MSG_WILDCARD),
        ("10.0.0.1", "must be a DNS name, not an IP address"),
        ("a" * 254, "must be no more than 253 characters"),
    ],
)
def test_it_refuses_other_hosts_a_real_server_refuses(networking, namespace, host, message):
    status = invalid(lambda: put_ingress(networking, namespace, ingress(host, tls_host="ok.example.com")))

    assert status["details"]["causes"][0]["field"] == "spec.rules[0].host"
    assert message in status["details"]["causes"][0]["message"]


def test_it_accepts_a_wildcard_host(networking, namespace):
    put_ingress(networking, namespace, ingress("*.example.com"))


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"port": 70000}, "backend.service.port.number", "must be between 1 and 65535, inclusive"),
        ({"service": "9web"}, "backend.service.name", validation.MSG_DNS1035),
    ],
)
def test_it_refuses_bad_backends(networking, namespace, changes, field, message):
    status = invalid(lambda: put_ingress(networking, namespace, ingress("ok.example.com", **changes)))

    cause = status["details"]["causes"][0]
    assert cause["field"] == f"spec.rules[0].http.paths[0].{field}" and message in cause["message"]


def test_it_refuses_a_network_policy_port_out_of_range(networking, namespace):
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p"},
        "spec": {"podSelector": {}, "ingress": [{"ports": [{"protocol": "TCP", "port": 0}]}]},
    }
    status = invalid(lambda: apply(networking.patch_namespaced_network_policy, "p", namespace, body=body))

    assert status["details"]["causes"][0] == {
        "reason": "FieldValueInvalid",
        "message": "Invalid value: 0: must be between 1 and 65535, inclusive",
        "field": "spec.ingress[0].ports[0].port",
    }


def test_it_refuses_a_secret_over_one_mebibyte(core, namespace):
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "big"},
        "data": {"A": base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()},
    }
    status = invalid(lambda: apply(core.patch_namespaced_secret, "big", namespace, body=body))

    assert status["message"] == 'Secret "big" is invalid: data: Too long: must have at most 1048576 bytes'
