"""Repository credentials for clone steps, as Kubernetes objects. Pure: no I/O, no client.

A project's deploy key (its private half) lives in one Secret per development deployment's
namespace, ``git-credentials`` (a build gets its own copy in the builds namespace), with the known
hosts of the big Git hosts. A clone step that needs it mounts the Secret read-only (only the clone
container mounts it, never the app's), copies the key into an
in-memory volume with mode 0600 (ssh refuses a key others may read, and a Secret volume's modes
cannot suit both root and unprivileged users) and points ``GIT_SSH_COMMAND`` at it. The key never
appears in a URL, an argument or a log line.

A project's HTTPS token (for an https:// repository) lives in a second Secret,
``git-https-credentials`` (type ``kubernetes.io/basic-auth``: its own Secret, so adding or
removing either credential never changes the other's immutable type). The clone step mounts it
read-only and git asks for it through ``GIT_ASKPASS``: a fixed script, written into the in-memory
volume, that prints the mounted files. The token is never in the URL, an argument or the environment.

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
HTTPS_SECRET_NAME = "git-https-credentials"  # noqa: S105 - a Secret's name
HTTPS_SECRET_VOLUME = "git-https-credentials"  # noqa: S105 - a volume's name
HTTPS_MOUNT = "/etc/diploi/git-https"
USERNAME = "username"  # the keys of kubernetes.io/basic-auth Secrets
PASSWORD = "password"  # noqa: S105 - a key's name
DEFAULT_HTTPS_USERNAME = "x-access-token"  # GitHub takes any user name with a token; GitLab and Bitbucket want theirs

PUBLISHED_HOST_KEYS = (
    "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "gitlab.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf",
    "bitbucket.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIazEu89wgQZ4bqs3d63QSMzYVa0MuJ2e2gKTKqu+UUO",
)

# Runs before a clone script, in the same shell: fixed text, no user value in it. Each part acts only
# when its Secret is mounted.
CREDENTIALS_PRELUDE = f"""if [ -f {MOUNT}/{PRIVATE_KEY} ]; then
  cp {MOUNT}/{PRIVATE_KEY} {WORK}/key && chmod 600 {WORK}/key
  cp {MOUNT}/{KNOWN_HOSTS} {WORK}/known_hosts
  export GIT_SSH_COMMAND="ssh -i {WORK}/key -o IdentitiesOnly=yes -o UserKnownHostsFile={WORK}/known_hosts \\
-o StrictHostKeyChecking=accept-new -o BatchMode=yes"
fi
if [ -f {HTTPS_MOUNT}/{PASSWORD} ]; then
  printf '%s\\n' '#!/bin/sh' 'case "$1" in' '  Username*) cat {HTTPS_MOUNT}/{USERNAME} ;;' \\
'  *) cat {HTTPS_MOUNT}/{PASSWORD} ;;' 'esac' > {WORK}/askpass && chmod 700 {WORK}/askpass
  export GIT_ASKPASS={WORK}/askpass GIT_TERMINAL_PROMPT=0
fi
"""


@dataclass(frozen=True)
class GitCredentials:
    """What a project gives its clone steps: a deploy key, an HTTPS token, or both. ``repr`` never
    shows a secret."""

    ssh_private_key: str | None = field(default=None, repr=False)
    https_token: str | None = field(default=None, repr=False)
    https_username: str = DEFAULT_HTTPS_USERNAME
    known_hosts: tuple[str, ...] = PUBLISHED_HOST_KEYS


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def credentials_secrets(
    credentials: GitCredentials,
    metadata: Mapping,
    *,
    secret_name: str = SECRET_NAME,
    https_secret_name: str = HTTPS_SECRET_NAME,
) -> list[dict]:
    """The Secrets holding ``credentials`` (one per kind it has); ``metadata``: their namespace,
    ownership labels and owner references."""
    labels = {**metadata.get("labels", {}), KIND_LABEL: KIND}
    secrets = []
    if credentials.ssh_private_key:
        known_hosts = "\n".join(credentials.known_hosts) + "\n"
        secrets.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {**metadata, "name": secret_name, "labels": labels},
                "type": "kubernetes.io/ssh-auth",
                "data": {PRIVATE_KEY: _b64(credentials.ssh_private_key), KNOWN_HOSTS: _b64(known_hosts)},
            }
        )
    if credentials.https_token:
        secrets.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {**metadata, "name": https_secret_name, "labels": labels},
                "type": "kubernetes.io/basic-auth",
                "data": {USERNAME: _b64(credentials.https_username), PASSWORD: _b64(credentials.https_token)},
            }
        )
    return secrets


def is_credentials_secret(obj: Mapping) -> bool:
    return obj.get("kind") == "Secret" and obj.get("metadata", {}).get("labels", {}).get(KIND_LABEL) == KIND


def build_secret_name(build_id: int) -> str:
    """A build's own copy of the deploy key, in the builds namespace (deleted with its Job)."""
    return f"build-{build_id}-git"


def build_https_secret_name(build_id: int) -> str:
    """A build's own copy of the HTTPS token, in the builds namespace (deleted with its Job)."""
    return f"build-{build_id}-git-https"


def with_credentials(
    container: dict,
    pod_volumes: list[dict],
    credentials: GitCredentials,
    *,
    secret_name: str = SECRET_NAME,
    https_secret_name: str = HTTPS_SECRET_NAME,
) -> None:
    """Give a clone ``container`` (whose command is ``[sh, -c, script, …]``) ``credentials`` from
    the Secrets ``secret_name`` and ``https_secret_name``: the prelude before its script, the
    mounts, and the volumes appended to ``pod_volumes``."""
    command = list(container["command"])
    command[2] = CREDENTIALS_PRELUDE + command[2]
    container["command"] = command
    mounts, volumes = [], []
    if credentials.ssh_private_key:
        mounts.append({"name": SECRET_VOLUME, "mountPath": MOUNT, "readOnly": True})
        volumes.append({"name": SECRET_VOLUME, "secret": {"secretName": secret_name, "defaultMode": 0o444}})
    if credentials.https_token:
        mounts.append({"name": HTTPS_SECRET_VOLUME, "mountPath": HTTPS_MOUNT, "readOnly": True})
        volumes.append({"name": HTTPS_SECRET_VOLUME, "secret": {"secretName": https_secret_name, "defaultMode": 0o444}})
    container["volumeMounts"] = [
        *container.get("volumeMounts", []),
        *mounts,
        {"name": WORK_VOLUME, "mountPath": WORK},
    ]
    pod_volumes += [*volumes, {"name": WORK_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}]
