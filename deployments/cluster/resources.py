"""The kinds Diploi reads and writes, and their REST paths."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


RESOURCES = {
    r.kind: r
    for r in (
        Resource("Namespace", "", "v1", "namespaces", namespaced=False),
        Resource("Secret", "", "v1", "secrets"),
        Resource("ConfigMap", "", "v1", "configmaps"),
        Resource("ResourceQuota", "", "v1", "resourcequotas"),
        Resource("LimitRange", "", "v1", "limitranges"),
        Resource("Service", "", "v1", "services"),
        Resource("Pod", "", "v1", "pods"),
        Resource("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims"),
        Resource("Event", "", "v1", "events"),
        Resource("Deployment", "apps", "v1", "deployments"),
        Resource("StatefulSet", "apps", "v1", "statefulsets"),
        Resource("ReplicaSet", "apps", "v1", "replicasets"),
        Resource("Job", "batch", "v1", "jobs"),
        Resource("Ingress", "networking.k8s.io", "v1", "ingresses"),
        Resource("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices"),
        Resource("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies"),
        Resource("Certificate", "cert-manager.io", "v1", "certificates"),
        Resource("PodMetrics", "metrics.k8s.io", "v1beta1", "pods"),
    )
}

# What we create and may prune when no longer desired. Claims are never pruned
# here: deleting storage is its own explicit step.
PRUNABLE_KINDS = (
    "Ingress", "StatefulSet", "Deployment", "NetworkPolicy", "Service", "Secret", "ConfigMap", "ResourceQuota",
    "LimitRange",
)  # fmt: skip
