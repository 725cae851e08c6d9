"""The kinds the emulator serves, and the discovery documents describing them.

One `Resource` row per REST resource: where it lives in the URL space, whether it
is namespaced, which subresources it has and how the server treats it (status
subresource, `metadata.generation`, name rules).
"""

from __future__ import annotations

from dataclasses import dataclass

# Verbs as discovery reports them.
_RW_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_RO_VERBS = ("get", "list")


@dataclass(frozen=True)
class Resource:
    """One REST resource (e.g. `deployments` in `apps/v1`)."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    status_subresource: bool = False  # writes to the main resource keep the stored status
    generation: bool = False  # metadata.generation is kept and bumped on spec changes
    name_rule: str = "subdomain"  # "subdomain", "label" (RFC 1123) or "dns1035"
    schema: bool = True  # validated against the Kubernetes OpenAPI schema
    read_only: bool = False  # served by a virtual API (metrics), never stored
    subresources: tuple[str, ...] = ()
    custom: bool = False  # a CustomResourceDefinition (cert-manager): no strategic merge patch
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Identifies the resource in the store, e.g. "deployments.apps"."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_resource(self) -> str:
        """How error messages name it: `pods`, `deployments.apps`."""
        return self.key

    @property
    def qualified_kind(self) -> str:
        """How Invalid errors name it: `Pod`, `Deployment.apps`."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def path_prefix(self) -> str:
        return f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"


def _r(group, version, kind, plural, namespaced, **kw) -> Resource:
    kw.setdefault("singular", kind.lower())
    return Resource(group, version, kind, plural, namespaced, **kw)


RESOURCES: tuple[Resource, ...] = (
    _r(
        "",
        "v1",
        "Namespace",
        "namespaces",
        False,
        short_names=("ns",),
        status_subresource=True,
        name_rule="label",
        subresources=("status", "finalize"),
    ),
    _r(
        "",
        "v1",
        "Pod",
        "pods",
        True,
        short_names=("po",),
        status_subresource=True,
        generation=True,
        subresources=("status", "log"),
        categories=("all",),
    ),
    _r(
        "",
        "v1",
        "Service",
        "services",
        True,
        short_names=("svc",),
        status_subresource=True,
        name_rule="dns1035",
        subresources=("status",),
        categories=("all",),
    ),
    _r("", "v1", "Secret", "secrets", True),
    _r("", "v1", "ConfigMap", "configmaps", True, short_names=("cm",)),
    _r(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        True,
        short_names=("quota",),
        status_subresource=True,
        subresources=("status",),
    ),  # fmt: skip
    _r("", "v1", "LimitRange", "limitranges", True, short_names=("limits",)),
    _r(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        True,
        short_names=("pvc",),
        status_subresource=True,
        subresources=("status",),
    ),
    _r(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        False,
        short_names=("pv",),
        status_subresource=True,
        subresources=("status",),
    ),
    _r("", "v1", "Event", "events", True, short_names=("ev",)),
    _r("", "v1", "ServiceAccount", "serviceaccounts", True, short_names=("sa",)),
    _r("", "v1", "Node", "nodes", False, short_names=("no",), status_subresource=True, subresources=("status",)),
    _r(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        True,
        short_names=("deploy",),
        status_subresource=True,
        generation=True,
        subresources=("status", "scale"),
        categories=("all",),
    ),
    _r(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        True,
        short_names=("sts",),
        status_subresource=True,
        generation=True,
        subresources=("status", "scale"),
        categories=("all",),
    ),
    _r(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        True,
        short_names=("rs",),
        status_subresource=True,
        generation=True,
        subresources=("status", "scale"),
        categories=("all",),
    ),
    _r(
        "batch",
        "v1",
        "Job",
        "jobs",
        True,
        status_subresource=True,
        generation=True,
        subresources=("status",),
        categories=("all",),
    ),
    _r(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        True,
        short_names=("ing",),
        status_subresource=True,
        generation=True,
        subresources=("status",),
    ),
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, generation=False),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, short_names=("netpol",), generation=True),
    _r(
        "cert-manager.io",
        "v1",
        "Certificate",
        "certificates",
        True,
        short_names=("cert", "certs"),
        status_subresource=True,
        generation=True,
        schema=False,
        custom=True,
        subresources=("status",),
        categories=("cert-manager",),
    ),
    _r("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True, read_only=True, schema=False),
    _r("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, read_only=True, schema=False),
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES if not r.read_only}
_BY_KEY = {r.key: r for r in RESOURCES if not r.read_only}

NAMESPACES = _BY_KEY["namespaces"]
PODS = _BY_KEY["pods"]
SERVICES = _BY_KEY["services"]
SECRETS = _BY_KEY["secrets"]
CONFIGMAPS = _BY_KEY["configmaps"]
PVCS = _BY_KEY["persistentvolumeclaims"]
PVS = _BY_KEY["persistentvolumes"]
EVENTS = _BY_KEY["events"]
SERVICEACCOUNTS = _BY_KEY["serviceaccounts"]
RESOURCEQUOTAS = _BY_KEY["resourcequotas"]
LIMITRANGES = _BY_KEY["limitranges"]
NODES = _BY_KEY["nodes"]
DEPLOYMENTS = _BY_KEY["deployments.apps"]
STATEFULSETS = _BY_KEY["statefulsets.apps"]
REPLICASETS = _BY_KEY["replicasets.apps"]
JOBS = _BY_KEY["jobs.batch"]
INGRESSES = _BY_KEY["ingresses.networking.k8s.io"]
NETWORKPOLICIES = _BY_KEY["networkpolicies.networking.k8s.io"]
ENDPOINTSLICES = _BY_KEY["endpointslices.discovery.k8s.io"]
CERTIFICATES = _BY_KEY["certificates.cert-manager.io"]
POD_METRICS = _BY_PATH[("metrics.k8s.io", "v1beta1", "pods")]
NODE_METRICS = _BY_PATH[("metrics.k8s.io", "v1beta1", "nodes")]

STORED: tuple[Resource, ...] = tuple(r for r in RESOURCES if not r.read_only)


def by_path(group: str, version: str, plural: str) -> Resource | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> Resource | None:
    return _BY_KIND.get((api_version, kind))


def group_versions() -> dict[str, list[str]]:
    """Every served API group (the core group is "") with its versions."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


def api_versions_doc(server_address: str) -> dict:
    """`GET /api`."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group(group: str, versions: list[str]) -> dict:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list_doc() -> dict:
    """`GET /apis`."""
    groups = [api_group(g, vs) for g, vs in group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list_doc(group: str, version: str) -> dict | None:
    """`GET /api/v1` or `GET /apis/<group>/<version>`: the APIResourceList, None if not served."""
    members = [r for r in RESOURCES if r.group == group and r.version == version]
    if not members:
        return None
    entries = []
    for r in members:
        entry = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(_RO_VERBS if r.read_only else _RW_VERBS),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entries.append(entry)
        for sub in r.subresources:
            sub_kind = {"scale": "Scale", "log": "Pod"}.get(sub, r.kind)
            verbs = ["get"] if sub == "log" else ["update"] if sub == "finalize" else ["get", "patch", "update"]
            sub_entry = {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": sub_kind,
                "verbs": verbs,
            }
            if sub == "scale":
                sub_entry.update(group="autoscaling", version="v1")
            entries.append(sub_entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}".lstrip("/"),
        "resources": entries,
    }
