"""The labels that mark what Diploi owns in a cluster, and selectors for them.

Every object we create carries the ownership labels; workloads, pods and
claims also carry the service (component or add-on) they belong to.
"""

MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
PROJECT = "diploi.io/project"
DEPLOYMENT = "diploi.io/deployment"
STAGE = "diploi.io/stage"
SERVICE = "diploi.io/service"
SERVICE_KIND = "diploi.io/service-kind"  # "component" or "addon"
STORAGE = "diploi.io/storage"

MANAGER = "diploi"
ENV_CHECKSUM_ANNOTATION = "diploi.io/env-checksum"
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
# On workloads: the desired generation they were rendered from, so the status can tell
# whether the cluster already holds the change an operation applied.
GENERATION_ANNOTATION = "diploi.io/generation"

OWNED_SELECTOR = f"{MANAGED_BY}={MANAGER}"


def ownership(*, project: str, deployment_id: int, stage: str) -> dict[str, str]:
    return {
        MANAGED_BY: MANAGER,
        PART_OF: project,
        PROJECT: project,
        DEPLOYMENT: str(deployment_id),
        STAGE: stage,
    }


def service_selector(deployment_id: int, service_id: str) -> dict[str, str]:
    """What a workload's pods are selected by. Immutable once a workload exists."""
    return {DEPLOYMENT: str(deployment_id), SERVICE: service_id}


def deployment_selector(deployment_id: int) -> str:
    return f"{MANAGED_BY}={MANAGER},{DEPLOYMENT}={deployment_id}"
