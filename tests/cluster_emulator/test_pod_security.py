"""The emulator enforces Pod Security Admission as a real API server does (issue 15, items 3 and 14):
a namespace labelled ``baseline`` or ``restricted`` refuses pods breaking the level, with the real
server's reason, and a workload whose pods break it gets no pods but a FailedCreate event."""

from __future__ import annotations

import pytest
from kubernetes import client

from .conftest import apply, deployment, eventually, make_namespace, pods_of, status_body

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def labelled(core, level: str) -> str:
    name = make_namespace(core, prefix=level[:4])
    core.patch_namespace(name, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": level}}})
    return name


def pod(name: str, *, context: dict | None = None, pod_context: dict | None = None, **spec) -> dict:
    container = {"name": "app", "image": "python:3.12.8-slim"}
    if context is not None:
        container["securityContext"] = context
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container], **spec}}
    if pod_context is not None:
        body["spec"]["securityContext"] = pod_context
    return body


def refusal(core, namespace: str, body: dict) -> str:
    with pytest.raises(client.ApiException) as raised:
        core.create_namespaced_pod(namespace, body)
    assert raised.value.status == 403
    return status_body(raised.value)["message"]


def test_a_restricted_namespace_refuses_a_pod_running_as_root_with_every_capability(core):
    namespace = labelled(core, "restricted")
    message = refusal(core, namespace, pod("plain"))
    assert message == (
        'pods "plain" is forbidden: violates PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost")'
    )
    assert core.list_namespaced_pod(namespace).items == []


@pytest.mark.parametrize(
    ("context", "pod_context", "reason"),
    [
        ({**RESTRICTED_CONTAINER, "runAsUser": 0}, None, 'runAsUser=0 (container "app" must not set runAsUser=0)'),
        (
            {**RESTRICTED_CONTAINER, "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}},
            None,
            'unrestricted capabilities (container "app" must not include "CHOWN" in securityContext.capabilities.add)',
        ),
        (
            {key: value for key, value in RESTRICTED_CONTAINER.items() if key != "seccompProfile"},
            {"seccompProfile": {"type": "Unconfined"}},
            'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")',
        ),
    ],
)
def test_a_restricted_namespace_refuses_each_breach_on_its_own(core, context, pod_context, reason):
    namespace = labelled(core, "restricted")
    assert reason in refusal(core, namespace, pod("one-breach", context=context, pod_context=pod_context))


def test_a_restricted_namespace_admits_a_pod_that_keeps_the_rules_from_the_pod_or_the_container(core):
    namespace = labelled(core, "restricted")
    core.create_namespaced_pod(namespace, pod("from-container", context=RESTRICTED_CONTAINER))
    pod_level = {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
    container = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}
    core.create_namespaced_pod(namespace, pod("from-pod", context=container, pod_context=pod_level))
    assert {p.metadata.name for p in pods_of(core, namespace)} == {"from-container", "from-pod"}


def test_a_baseline_namespace_admits_root_but_not_privilege_host_paths_or_extra_capabilities(core):
    namespace = labelled(core, "baseline")
    core.create_namespaced_pod(namespace, pod("root", context={"runAsUser": 0}))
    assert 'privileged (container "app" must not set securityContext.privileged=true)' in refusal(
        core, namespace, pod("privileged", context={"privileged": True})
    )
    assert 'non-default capabilities (container "app" must not include "SYS_ADMIN"' in refusal(
        core, namespace, pod("admin", context={"capabilities": {"add": ["SYS_ADMIN"]}})
    )
    host_path = pod("host", volumes=[{"name": "root", "hostPath": {"path": "/"}}])
    assert 'hostPath volumes (volume "root")' in refusal(core, namespace, host_path)
    assert "host namespaces (hostNetwork=true)" in refusal(core, namespace, pod("net", hostNetwork=True))


def test_an_unlabelled_or_privileged_namespace_admits_anything(core):
    privileged = labelled(core, "privileged")
    unlabelled = make_namespace(core)
    for namespace in (privileged, unlabelled):
        core.create_namespaced_pod(namespace, pod("anything", context={"privileged": True}))
        assert [p.metadata.name for p in pods_of(core, namespace)] == ["anything"]


def test_a_deployment_breaking_the_level_is_stored_but_its_pods_are_refused(core, apps):
    namespace = labelled(core, "restricted")
    apply(apps.patch_namespaced_deployment, "web", namespace, body=deployment("web", namespace))

    def failed_create():
        events = core.list_namespaced_event(namespace).items
        return [
            e for e in events if e.reason == "FailedCreate" and 'violates PodSecurity "restricted:latest"' in e.message
        ]

    eventually(failed_create, message="a FailedCreate event naming the Pod Security level")
    assert pods_of(core, namespace) == []
