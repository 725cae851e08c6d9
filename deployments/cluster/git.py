"""Repository credentials for clone steps, as Kubernetes objects. Pure: no I/O, no client.

A project's deploy key (its private half) lives in one Secret per development deployment's
namespace, ``git-credentials`` (a build gets its own copy in the builds namespace), with the known
hosts of the big Git hosts. A clone step that needs it mounts the Secret read-only (only the clone
container mounts it, never the app's), copies the key into an
in-memory volume with mode 0600 (ssh refuses a key others may read, and a Secret volume's modes
cannot suit both root and unprivileged users) and points ``GIT_SSH_COMMAND`` at it. The key never
appears in a URL, an argument or a log line.

Known hosts: GitHub's, GitLab's and Bitbucket's published ed25519 keys are checked strictly;
another host's key is accepted on first use (each clone starts from this file, so that is each
time).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

SECRET_NAME = "git-credentials"  # noqa: S105 - a Secret's name
KIND_LABEL = "diploi.io/secret-kind"
KIND = "git-credentials"
PRIVATE_KEY = "ssh-privatekey"  # the key of kubernetes.io/ssh-auth Secrets
KNOWN_HOSTS = "known_hosts"
MOUNT = "/etc/diploi/git"
WORK = "/run/diploi-git"
SECRET_VOLUME = "git-credentials"  # noqa: S105 - a volume's name
WORK_VOLUME = "git-ssh"

PUBLISHED_HOST_KEYS = (
    "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "gitlab.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf",
    "bitbucket.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIazEu89wgQZ4bqs3d63QSMzYVa0MuJ2e2gKTKqu+UUO",
)

# Runs before a clone script, in the same shell: fixed text, no user value in it.
SSH_PRELUDE = f"""if [ -f {MOUNT}/{PRIVATE_KEY} ]; then
  cp {MOUNT}/{PRIVATE_KEY} {WORK}/key && chmod 600 {WORK}/key
  cp {MOUNT}/{KNOWN_HOSTS} {WORK}/known_hosts
  export GIT_SSH_COMMAND="ssh -i {WORK}/key -o IdentitiesOnly=yes -o UserKnownHostsFile={WORK}/known_hosts \\
-o StrictHostKeyChecking=accept-new -o BatchMode=yes"
fi
"""


@dataclass(frozen=True)
class GitCredentials:
    """What a project gives its clone steps. ``repr`` never shows the key."""

    ssh_private_key: str = field(repr=False)
    known_hosts: tuple[str, ...] = PUBLISHED_HOST_KEYS


def credentials_secret(credentials: GitCredentials, metadata: Mapping) -> dict:
    """The ``git-credentials`` Secret; ``metadata``: its name, namespace and ownership labels."""
    known_hosts = "\n".join(credentials.known_hosts) + "\n"
    labels = {**metadata.get("labels", {}), KIND_LABEL: KIND}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {**metadata, "name": SECRET_NAME, "labels": labels},
        "type": "kubernetes.io/ssh-auth",
        "data": {
            PRIVATE_KEY: base64.b64encode(credentials.ssh_private_key.encode()).decode(),
            KNOWN_HOSTS: base64.b64encode(known_hosts.encode()).decode(),
        },
    }


def is_credentials_secret(obj: Mapping) -> bool:
    return obj.get("kind") == "Secret" and obj.get("metadata", {}).get("labels", {}).get(KIND_LABEL) == KIND


def build_secret_name(build_id: int) -> str:
    """A build's own copy of the credentials, in the builds namespace (deleted with its Job)."""
    return f"build-{build_id}-git"


def with_credentials(container: dict, pod_volumes: list[dict], *, secret_name: str = SECRET_NAME) -> None:
    """Give a clone ``container`` (whose command is ``[sh, -c, script, …]``) the credentials in the
    Secret ``secret_name``: the prelude before its script, the two mounts, and the volumes appended
    to ``pod_volumes``."""
    command = list(container["command"])
    command[2] = SSH_PRELUDE + command[2]
    container["command"] = command
    container["volumeMounts"] = [
        *container.get("volumeMounts", []),
        {"name": SECRET_VOLUME, "mountPath": MOUNT, "readOnly": True},
        {"name": WORK_VOLUME, "mountPath": WORK},
    ]
    pod_volumes += [
        {"name": SECRET_VOLUME, "secret": {"secretName": secret_name, "defaultMode": 0o444}},
        {"name": WORK_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
    ]
