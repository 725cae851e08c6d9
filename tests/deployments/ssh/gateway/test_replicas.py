"""A component with several replicas (the `replicated` fixture), through OpenSSH: the default replica,
each replica by the Connect command its pod shows in the status tree, and a replica that does not exist.
In the emulator a pod's `HOSTNAME` is its name, as in a real container.
"""

from __future__ import annotations

import html
import re
import shlex

import pytest
from django.urls import reverse

from deployments.ssh.gateway.pods import replica_name
from tests.support import observe, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def hostname(openssh, user: str):
    return openssh.ssh(user, 'echo "$HOSTNAME"')


def test_without_a_replica_it_enters_the_first_ready_one_every_time_and_says_which(openssh, registered, replicated):
    first, second = replicated.ready_pods()
    for _ in range(3):
        result = hostname(openssh, replicated.ssh_user)
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode().strip() == first
        # The note names the pod entered and how to name the other one.
        assert (
            f"diploi: app has 2 ready replicas; you are in {first} (another: put its name first, "
            f"e.g. {replica_name(second)}.{replicated.ssh_user}; others: {replica_name(second)})"
        ).encode() in result.stderr


def test_each_replica_is_reached_by_the_connect_command_its_pod_shows(
    openssh, registered, replicated, developer, client
):
    observe(replicated.deployment)  # the status tree the page shows, with both pods
    client.force_login(developer)
    page = client.get(reverse("deployment", args=[replicated.deployment.pk])).content.decode()
    shown = {
        pod: html.unescape(command)
        for pod, command in re.findall(r'<code id="connect-([^"]+)" class="command">([^<]+)</code>', page)
    }
    pods = replicated.ready_pods()
    assert set(shown) == set(pods)
    for pod in pods:
        assert shown[pod] == f"ssh {replica_name(pod)}.{replicated.ssh_user}@127.0.0.1 -p {openssh.port}"
        user = shlex.split(shown[pod])[1].split("@")[0]
        result = hostname(openssh, user)
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode().strip() == pod
        assert b"ready replicas" not in result.stderr  # the named replica is entered without a note
    # The pod's whole name works too.
    assert hostname(openssh, f"{pods[1]}.{replicated.ssh_user}").stdout.decode().strip() == pods[1]


def test_a_replica_that_does_not_exist_is_refused_naming_the_ready_ones(openssh, registered, replicated):
    first, second = replicated.ready_pods()
    result = hostname(openssh, f"nosuchpod.{replicated.ssh_user}")
    assert result.returncode == 255
    assert result.stdout == b""
    ready = f"{replica_name(first)} ({first}), {replica_name(second)} ({second})"
    assert f"diploi: app has no ready replica 'nosuchpod'; ready: {ready}".encode() in result.stderr


def test_a_deleted_replica_is_no_longer_entered(openssh, registered, replicated):
    from deployments.cluster.connection import get_cluster

    first, second = replicated.ready_pods()
    get_cluster().delete("Pod", first, replicated.deployment.namespace)
    # The Deployment replaces it with a pod of another name.
    wait_for(lambda: first not in replicated.ready_pods(), timeout=15, what=f"{first} gone")
    result = hostname(openssh, f"{replica_name(first)}.{replicated.ssh_user}")
    assert result.returncode == 255
    assert f"diploi: app has no ready replica '{replica_name(first)}'".encode() in result.stderr
    entered = hostname(openssh, replicated.ssh_user).stdout.decode().strip()
    assert entered != first and entered in replicated.ready_pods()
