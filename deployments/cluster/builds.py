"""A build's Kubernetes objects, as plain dicts: the builds namespace and one Job per build. Pure.

Builds run in their own namespace (BUILD_NAMESPACE), not the tenant's:
BuildKit rootless needs unconfined seccomp and AppArmor, which Pod Security
`baseline` forbids, and tenant namespaces enforce `restricted` or `baseline`
(`security.namespace_labels`). Lowering a tenant's level for its builds would
let its own pods run unconfined too. The builds namespace enforces
`privileged` (warning and auditing at `baseline`), holds nothing but build
Jobs and the registry's push credentials, and refuses all ingress.

The Job: an init container clones the exact commit (values passed as
arguments, never spliced into the script), then BuildKit builds the
Dockerfile and pushes to the registry; `--metadata-file` goes to the
container's termination message, where the runner reads the digest.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployments.cluster import git
from deployments.cluster import labels as L

BUILD = "diploi.io/build"
COMPONENT = "diploi.io/component"
ROLE = "diploi.io/role"
PSA = "pod-security.kubernetes.io"
WORKSPACE = "/workspace"
BUILDKIT_HOME = "/home/user"
METADATA_FILE = "/tmp/build-metadata.json"  # noqa: S108 - inside the build container's own /tmp
# The clone, as the init container runs it: $0 is the checkout directory, $1 the repository, $2 the commit
# and $3 the branch (fetching a commit by SHA is not allowed by every server: the branch is the fallback).
CLONE_SCRIPT = r"""set -eu
dir="$0"
git init -q "$dir"
cd "$dir"
git remote add origin -- "$1"
if ! git fetch -q --depth 1 origin "$2"; then
  echo "Fetching $2 by its SHA was refused: fetching branch $3 instead."
  git fetch -q origin "refs/heads/$3"
fi
git -c advice.detachedHead=false checkout -q "$2"
echo "Checked out $(git log -1 --format='%H %s')"
"""
# BuildKit, then its metadata (the pushed digest) as the termination message. "$@" is buildctl's arguments.
BUILD_SCRIPT = r"""buildctl-daemonless.sh "$@"
status=$?
if [ -f /tmp/build-metadata.json ]; then cat /tmp/build-metadata.json > /dev/termination-log; fi
exit $status
"""


@dataclass(frozen=True)
class BuildTarget:
    """Everything about one build that decides its Job."""

    build_id: int
    deployment_id: int
    project: str
    stage: str
    component: str
    repository: str
    branch: str
    commit_sha: str
    dockerfile: str
    context: str
    image: str  # registry/path, tagged with the commit on push
    git_credentials: git.GitCredentials | None = None  # the project's deploy key or token, for the clone


@dataclass(frozen=True)
class BuildSettings:
    namespace: str
    buildkit_image: str
    git_image: str
    registry_secret: str
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    deadline_seconds: int
    retention_seconds: int


def job_name(build_id: int) -> str:
    return f"build-{build_id}"


def build_labels(target: BuildTarget) -> dict[str, str]:
    return {
        **L.ownership(project=target.project, deployment_id=target.deployment_id, stage=target.stage),
        L.NAME: "build",
        BUILD: str(target.build_id),
        COMPONENT: target.component,
    }


def build_selector(build_id: int) -> str:
    return f"{L.MANAGED_BY}={L.MANAGER},{BUILD}={build_id}"


def namespace(settings: BuildSettings) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": settings.namespace,
            "labels": {
                L.MANAGED_BY: L.MANAGER,
                ROLE: "builds",
                # BuildKit rootless needs unconfined seccomp and AppArmor: more than `baseline` allows.
                f"{PSA}/enforce": "privileged",
                f"{PSA}/enforce-version": "latest",
                f"{PSA}/warn": "baseline",
                f"{PSA}/warn-version": "latest",
                f"{PSA}/audit": "baseline",
                f"{PSA}/audit-version": "latest",
            },
        },
    }


def network_policy(settings: BuildSettings) -> dict:
    """Nothing may connect to a build; builds may reach the repository and the registry (egress open)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "builds-deny-ingress",
            "namespace": settings.namespace,
            "labels": {L.MANAGED_BY: L.MANAGER},
        },
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def _dockerfile_parts(target: BuildTarget) -> tuple[str, str]:
    """(the directory holding the Dockerfile, its file name), relative to the checkout."""
    directory, _, filename = target.dockerfile.rpartition("/")
    return directory or ".", filename


def buildctl_args(target: BuildTarget) -> list[str]:
    directory, filename = _dockerfile_parts(target)
    return [
        "build",
        "--frontend",
        "dockerfile.v0",
        "--local",
        f"context={WORKSPACE}/src/{target.context}",
        "--local",
        f"dockerfile={WORKSPACE}/src/{directory}",
        "--opt",
        f"filename={filename}",
        "--output",
        f"type=image,name={target.image}:{target.commit_sha},push=true",
        "--progress",
        "rawjson",
        "--metadata-file",
        METADATA_FILE,
    ]


def job(target: BuildTarget, settings: BuildSettings) -> dict:
    """The Job that builds and pushes one component's image at one commit. Idempotent to apply."""
    labels = build_labels(target)
    unprivileged = {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    clone = {
        "name": "clone",
        "image": settings.git_image,
        "command": ["sh", "-c", CLONE_SCRIPT, f"{WORKSPACE}/src", target.repository, target.commit_sha, target.branch],
        "env": [{"name": "HOME", "value": WORKSPACE}, {"name": "GIT_TERMINAL_PROMPT", "value": "0"}],
        "volumeMounts": [{"name": "workspace", "mountPath": WORKSPACE}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": {**unprivileged, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    build = {
        "name": "build",
        "image": settings.buildkit_image,
        "command": ["sh", "-c", BUILD_SCRIPT, "buildctl", *buildctl_args(target)],
        "env": [
            {"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"},
            {"name": "DOCKER_CONFIG", "value": f"{BUILDKIT_HOME}/.docker"},
        ],
        "volumeMounts": [
            {"name": "workspace", "mountPath": WORKSPACE, "readOnly": True},
            {"name": "buildkitd", "mountPath": f"{BUILDKIT_HOME}/.local/share/buildkit"},
            {"name": "registry-auth", "mountPath": f"{BUILDKIT_HOME}/.docker", "readOnly": True},
        ],
        "resources": {
            "requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
            "limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit},
        },
        "terminationMessagePolicy": "File",
        "securityContext": {
            # Rootless BuildKit: an unprivileged user, but unconfined seccomp and AppArmor (its user
            # namespaces and mounts need them). Never privileged.
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "seccompProfile": {"type": "Unconfined"},
            "appArmorProfile": {"type": "Unconfined"},
        },
    }
    pod_spec = {
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "securityContext": {"fsGroup": 1000},
        "initContainers": [clone],
        "containers": [build],
        "volumes": [
            {"name": "workspace", "emptyDir": {}},
            {"name": "buildkitd", "emptyDir": {}},
            {
                "name": "registry-auth",
                # Optional: a registry that takes pushes without credentials needs no Secret.
                "secret": {
                    "secretName": settings.registry_secret,
                    "optional": True,
                    "items": [{"key": "config.json", "path": "config.json"}],
                },
            },
        ],
    }
    if target.git_credentials is not None:
        git.with_credentials(
            clone,
            pod_spec["volumes"],
            target.git_credentials,
            secret_name=git.build_secret_name(target.build_id),
            https_secret_name=git.build_https_secret_name(target.build_id),
        )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(target.build_id), "namespace": settings.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": settings.deadline_seconds,
            "ttlSecondsAfterFinished": settings.retention_seconds,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def git_secrets(target: BuildTarget, settings: BuildSettings, *, job_uid: str | None = None) -> list[dict]:
    """The build's copies of the project's deploy key and HTTPS token (none without them). Given the
    Job's uid, they are owned by the Job: the garbage collector deletes them with it (retention, cancel)."""
    if target.git_credentials is None:
        return []
    metadata: dict = {"namespace": settings.namespace, "labels": build_labels(target)}
    if job_uid:
        metadata["ownerReferences"] = [
            {"apiVersion": "batch/v1", "kind": "Job", "name": job_name(target.build_id), "uid": job_uid}
        ]
    return git.credentials_secrets(
        target.git_credentials,
        metadata,
        secret_name=git.build_secret_name(target.build_id),
        https_secret_name=git.build_https_secret_name(target.build_id),
    )
