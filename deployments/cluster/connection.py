"""The process's shared `Cluster` and the cluster settings manifests need."""

from __future__ import annotations

import threading

from django.conf import settings

from deployments.cluster.client import Cluster
from deployments.cluster.manifests import ClusterSettings

_lock = threading.Lock()
_cluster: Cluster | None = None


def get_cluster() -> Cluster:
    """The shared client (created on first use). Raises `ClusterNotConfigured` without a cluster."""
    global _cluster
    with _lock:
        if _cluster is None:
            _cluster = Cluster.from_settings()
        return _cluster


def reset_cluster() -> None:
    """Forget the shared client (after the settings changed: tests, standalone start-up)."""
    global _cluster
    with _lock:
        if _cluster is not None:
            _cluster.close()
        _cluster = None


def cluster_settings() -> ClusterSettings:
    return ClusterSettings(
        base_domain=settings.BASE_DOMAIN,
        ingress_class=settings.CLUSTER_INGRESS_CLASS,
        cluster_issuer=settings.CLUSTER_ISSUER,
        storage_class=settings.CLUSTER_STORAGE_CLASS or None,
        git_image=settings.CLUSTER_GIT_IMAGE,
        sftp_image=settings.CLUSTER_SFTP_IMAGE,
        ingress_namespace=settings.CLUSTER_INGRESS_NAMESPACE,
    )
