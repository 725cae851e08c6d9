"""A deployment's desired Kubernetes objects, as plain dicts. Pure: no I/O, no client.

`render(target, cluster)` returns every object in apply order (namespace
first). The same list is what `manage.py manifests` prints, what the applier
sends with server-side apply, and what the pruner compares against.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from deployments.cluster import git, security
from deployments.cluster import labels as L
from deployments.cluster.environment import resolve_environment
from deployments.sizes import DeploymentSize
from templates_catalog.spec import AddOn, Component, HealthCheck, Security, Stage, Storage, TemplateSpec
from templates_catalog.validation import HEADLESS_SUFFIX  # template ids never end in it

CODE_VOLUME = "code"
CLONE_ROOT = "/workspace"
# The init container's script: user-supplied values (branch, repository) arrive
# as positional arguments ($1, $2), never spliced into the script text.
CLONE_SCRIPT = r"""set -eu
root="$0"
if [ -e "$root/.diploi-cloned" ]; then
  echo "The code volume already holds the code: keeping it."
  exit 0
fi
rm -rf "$root/.clone-tmp"
git clone --depth 1 --branch "$1" -- "$2" "$root/.clone-tmp"
rm -rf "$root/code"
mv "$root/.clone-tmp" "$root/code"
touch "$root/.diploi-cloned"
"""
# Where the development container finds sftp-server when the template asks for it (SFTP and scp over SSH):
# an init step puts OpenSSH's sftp-server onto the code volume, once: copied from the init image when it has
# one (CLUSTER_SFTP_IMAGE with openssh-sftp-server installed needs no network), otherwise Debian's
# openssh-sftp-server (linked against glibc only) fetched with apt-get. It never fails the pod: without
# network or packages the app starts, and SFTP says there is no sftp-server.
TOOLS_DIR = "diploi-tools"
TOOLS_PATH = "/opt/diploi/bin"
SFTP_SCRIPT = r"""set -u
dest="$0"
[ -x "$dest/sftp-server" ] && { echo "sftp-server is already in place."; exit 0; }
for own in /usr/lib/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/openssh/sftp-server; do
  if [ -x "$own" ] && cp "$own" "$dest/.sftp-server.tmp" && mv "$dest/.sftp-server.tmp" "$dest/sftp-server"; then
    echo "sftp-server is in place for SFTP and scp over SSH (from this image's $own)."
    exit 0
  fi
done
work="$(mktemp -d)"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
set -- -q -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" \
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root
if apt-get "$@" update >"$work/log" 2>&1 \
  && (cd "$work" && apt-get "$@" download openssh-sftp-server >>"$work/log" 2>&1) \
  && dpkg-deb -x "$work"/openssh-sftp-server_*.deb "$work/root" \
  && cp "$work/root/usr/lib/openssh/sftp-server" "$dest/.sftp-server.tmp" \
  && mv "$dest/.sftp-server.tmp" "$dest/sftp-server"; then
  echo "sftp-server is in place for SFTP and scp over SSH."
else
  echo "Could not fetch sftp-server; the app starts anyway (SFTP and scp over SSH will say so):" >&2
  tail -n 5 "$work/log" >&2
fi
rm -rf "$work"
exit 0
"""
INIT_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}


class ManifestError(ValueError):
    """The deployment cannot be rendered (a host too long, a missing value)."""


@dataclass(frozen=True)
class ClusterSettings:
    base_domain: str
    ingress_class: str = "nginx"
    cluster_issuer: str = "letsencrypt"
    storage_class: str | None = None
    git_image: str = "alpine/git:2.47.2"
    ingress_namespace: str = "ingress-nginx"
    # Debian 12's packages run in the shipped (Debian 12 and later) images.
    sftp_image: str = "debian:12.11-slim"


@dataclass(frozen=True)
class RenderTarget:
    """Everything about one deployment that decides its objects."""

    deployment_id: int
    name: str
    project: str
    namespace: str
    stage: Stage
    spec: TemplateSpec
    repository: str
    branch: str
    size: DeploymentSize
    enabled: bool = True
    addons: frozenset[str] | None = None  # enabled toggleable add-ons; None = the template's defaults
    env_overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    generated_secrets: Mapping[str, str] = field(default_factory=dict)
    custom_domains: tuple[str, ...] = ()
    image_overrides: Mapping[str, str] = field(default_factory=dict)
    restart_marks: Mapping[str, str] = field(default_factory=dict)  # service id or "*" -> ISO time
    built_images: Mapping[str, str] = field(default_factory=dict)  # component -> registry/path@sha256:…
    git_credentials: git.GitCredentials | None = None  # the project's deploy key or token, for clone steps
    generation: int = 0  # the desired generation rendered; written on workloads when set

    @property
    def mode(self) -> str:
        return self.spec.mode(self.stage)

    def image_of(self, component: Component) -> str | None:
        """What the component runs: an operator's override, else in a build stage the image built from
        the repository (pinned by digest; None until a build succeeded), else the template's image."""
        if override := self.image_overrides.get(component.id):
            return override
        if self.mode == "build" and component.build is not None:
            return self.built_images.get(component.id)
        return component.image

    def awaits_build(self, component: Component) -> bool:
        """Whether the component has nothing to run yet: no build of it has succeeded."""
        return self.image_of(component) is None

    def present_addons(self) -> tuple[AddOn, ...]:
        return self.spec.addons_for(self.stage, None if self.addons is None else set(self.addons))

    def labels(self) -> dict[str, str]:
        return L.ownership(project=self.project, deployment_id=self.deployment_id, stage=self.stage)

    def service_labels(self, service_id: str, kind: str) -> dict[str, str]:
        return {**self.labels(), L.NAME: service_id, L.SERVICE: service_id, L.SERVICE_KIND: kind}


# ----------------------------------------------------------------------------- hosts


def fill_host(template: str, *, component: str, deployment: str, project: str, base_domain: str) -> str:
    return (
        template.replace("[component]", component)
        .replace("[deployment]", deployment)
        .replace("[project]", project)
        .replace("[base-domain]", base_domain)
    )


def public_hosts(target: RenderTarget, cluster: ClusterSettings) -> list[tuple[Component, int, str]]:
    """(component, port, host) for every public endpoint, in template order."""
    hosts = []
    for component in target.spec.components:
        for endpoint in component.public:
            host = fill_host(
                endpoint.host,
                component=component.id,
                deployment=target.name,
                project=target.project,
                base_domain=cluster.base_domain,
            )
            first_label = host.split(".", 1)[0]
            if len(first_label) > 63:
                raise ManifestError(f"the public host {host} has a first part longer than 63 characters")
            hosts.append((component, endpoint.port, host))
    return hosts


# ----------------------------------------------------------------------------- objects


def _meta(name: str, target: RenderTarget, extra_labels: Mapping[str, str] | None = None, **more) -> dict:
    return {"name": name, "namespace": target.namespace, "labels": {**target.labels(), **(extra_labels or {})}, **more}


def namespace(target: RenderTarget) -> dict:
    services = [*target.spec.components, *target.present_addons()]
    labels = {**target.labels(), **security.namespace_labels(s.security.level for s in services)}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target.namespace, "labels": labels}}


def env_secret_name(service_id: str) -> str:
    return f"{service_id}-env"


def env_secret(target: RenderTarget, service_id: str, kind: str, values: Mapping[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(env_secret_name(service_id), target, target.service_labels(service_id, kind)),
        "type": "Opaque",
        "data": {name: base64.b64encode(value.encode()).decode() for name, value in sorted(values.items())},
    }


def _checksum(values: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(sorted(values.items()))).encode()).hexdigest()[:16]


def _probes(health: HealthCheck | None, *, slow_start: bool = False) -> dict:
    """Readiness and liveness (each with its own timeout); with ``slow_start`` (a development server,
    whose first `pip install` or `npm install` can take minutes) a startup probe holds liveness off for
    up to ten minutes."""
    if health is None:
        return {}
    if health.kind == "http":
        action = {"httpGet": {"path": health.path, "port": health.port}}
    else:
        action = {"tcpSocket": {"port": health.port}}
    probes = {
        "readinessProbe": {
            **action,
            "initialDelaySeconds": health.initial_delay_seconds,
            "periodSeconds": health.period_seconds,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            **action,
            # Liveness waits longer: a slow first start must not be killed in a loop.
            "initialDelaySeconds": health.initial_delay_seconds + 30,
            "periodSeconds": max(health.period_seconds, 10),
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
    }
    if slow_start:
        probes["startupProbe"] = {
            **action,
            "initialDelaySeconds": health.initial_delay_seconds,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 60,
        }
    return probes


def _pod_annotations(target: RenderTarget, service_id: str, env: Mapping[str, str]) -> dict[str, str]:
    annotations = {L.ENV_CHECKSUM_ANNOTATION: _checksum(env)}
    marks = [mark for key, mark in target.restart_marks.items() if key in ("*", service_id)]
    if marks:
        annotations[L.RESTARTED_AT_ANNOTATION] = max(marks)
    return annotations


def _claim_template(
    target: RenderTarget, service_id: str, kind: str, storage: Storage, cluster: ClusterSettings
) -> dict:
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage.size}}}
    if cluster.storage_class:
        spec["storageClassName"] = cluster.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": storage.name,
            "labels": {**target.service_labels(service_id, kind), L.STORAGE: storage.name},
        },
        "spec": spec,
    }


def _pod_spec(
    containers: list[dict],
    service_security: Security,
    init_containers: list[dict] | None = None,
    volumes: list[dict] | None = None,
) -> dict:
    spec = {
        # Service links would inject e.g. POSTGRES_PORT=tcp://… and clash with the app's own variables.
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "securityContext": security.pod_security_context(service_security),
        "containers": containers,
    }
    if init_containers:
        spec["initContainers"] = init_containers
    if volumes:
        spec["volumes"] = volumes
    return spec


def _workload(
    *,
    kind: str,
    target: RenderTarget,
    service_id: str,
    service_kind: str,
    replicas: int,
    pod_spec: dict,
    annotations: Mapping[str, str],
    claims: list[dict],
) -> dict:
    selector = L.service_selector(target.deployment_id, service_id)
    labels = target.service_labels(service_id, service_kind)
    spec: dict = {
        "replicas": replicas if target.enabled else 0,
        "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": labels, "annotations": dict(annotations)}, "spec": pod_spec},
    }
    if kind == "StatefulSet":
        # The governing Service gives each pod its stable DNS name (`<pod>.<service>.<namespace>.svc`);
        # immutable on the StatefulSet (`operations.replace_statefulset` moves older ones over).
        spec["serviceName"] = headless_service_name(service_id)
        if claims:
            spec["volumeClaimTemplates"] = claims
    else:
        spec["revisionHistoryLimit"] = 3
    meta = _meta(service_id, target, labels)
    if target.generation:
        # Metadata only: a new generation alone never restarts pods.
        meta["annotations"] = {L.GENERATION_ANNOTATION: str(target.generation)}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


def _container(
    *,
    name: str,
    image: str,
    port: int,
    command: tuple[str, ...] | None,
    size: DeploymentSize,
    health: HealthCheck | None,
    mounts: list[dict],
    service_security: Security,
    working_dir: str | None = None,
    slow_start: bool = False,
) -> dict:
    container = {
        "name": name,
        "image": image,
        "ports": [{"name": "main", "containerPort": port, "protocol": "TCP"}],
        "envFrom": [{"secretRef": {"name": env_secret_name(name)}}],
        "resources": size.resources(),
        "securityContext": security.container_security_context(service_security),
        **_probes(health, slow_start=slow_start),
    }
    if command:
        container["command"] = list(command)
    if working_dir:
        container["workingDir"] = working_dir
    if mounts:
        container["volumeMounts"] = mounts
    return container


def component_workload(
    target: RenderTarget, component: Component, env: Mapping[str, str], cluster: ClusterSettings
) -> dict:
    """The component's StatefulSet or Deployment. Never called for one that awaits its first build."""
    storage = component.storage_for(target.stage)
    claims = [_claim_template(target, component.id, "component", volume, cluster) for volume in storage]
    annotations = _pod_annotations(target, component.id, env)
    replicas = component.replicas_for(target.stage)
    if target.mode == "source":
        return _source_workload(target, component, storage, claims, annotations, cluster)
    image = target.image_of(component)
    container = _container(
        name=component.id,
        image=image,
        port=component.port,
        command=component.command_for(target.stage, "build"),
        size=target.size,
        health=component.health,
        mounts=[{"name": volume.name, "mountPath": volume.path} for volume in storage],
        service_security=component.security,
    )
    return _workload(
        # Containers keep nothing between restarts, unless the template gives the
        # component storage in this stage: then it needs a StatefulSet's claims.
        kind="StatefulSet" if storage else "Deployment",
        target=target,
        service_id=component.id,
        service_kind="component",
        replicas=1 if storage else replicas,
        pod_spec=_pod_spec([container], component.security),
        annotations=annotations,
        claims=claims,
    )


def _source_workload(target, component, storage, claims, annotations, cluster) -> dict:
    """Development: the code is cloned once onto its volume, then the dev command runs on it."""
    code = next((volume for volume in storage if volume.path == component.code_path), None)
    if code is None:
        code = Storage(name=CODE_VOLUME, path=component.code_path, size="5Gi", size_bytes=5 * 1024**3)
        claims = [_claim_template(target, component.id, "component", code, cluster), *claims]
    clone = {
        "name": "clone",
        "image": cluster.git_image,
        "command": ["sh", "-c", CLONE_SCRIPT, CLONE_ROOT, target.branch, target.repository],
        "volumeMounts": [{"name": code.name, "mountPath": CLONE_ROOT}],
        "resources": INIT_RESOURCES,
        # As the component's user (the pod's), so the app can write the code it runs; git needs no capability.
        "env": [{"name": "HOME", "value": CLONE_ROOT}],
        "securityContext": security.container_security_context(component.security, capabilities=()),
    }
    volumes: list[dict] = []
    if target.git_credentials is not None:
        git.with_credentials(clone, volumes, target.git_credentials)
    mounts = [{"name": code.name, "mountPath": component.code_path, "subPath": "code"}]
    mounts += [{"name": v.name, "mountPath": v.path} for v in storage if v.name != code.name]
    init_containers = [clone]
    if component.provide_sftp_server:
        init_containers.append(
            {
                "name": "sftp-server",
                "image": cluster.sftp_image,
                "command": ["sh", "-c", SFTP_SCRIPT, CLONE_ROOT],
                "volumeMounts": [{"name": code.name, "mountPath": CLONE_ROOT, "subPath": TOOLS_DIR}],
                "resources": INIT_RESOURCES,
                "securityContext": security.container_security_context(component.security, capabilities=()),
            }
        )
        mounts.append({"name": code.name, "mountPath": TOOLS_PATH, "subPath": TOOLS_DIR, "readOnly": True})
    container = _container(
        name=component.id,
        image=target.image_overrides.get(component.id) or component.image,
        port=component.port,
        command=component.command_for(target.stage, "source"),
        size=target.size,
        health=component.health,
        mounts=mounts,
        service_security=component.security,
        working_dir=component.code_path,
        slow_start=True,
    )
    return _workload(
        kind="StatefulSet",
        target=target,
        service_id=component.id,
        service_kind="component",
        replicas=1,
        pod_spec=_pod_spec([container], component.security, init_containers, volumes),
        annotations=annotations,
        claims=claims,
    )


def addon_workload(target: RenderTarget, addon: AddOn, env: Mapping[str, str], cluster: ClusterSettings) -> dict:
    storage = addon.storage_for(target.stage)
    container = _container(
        name=addon.id,
        image=addon.image,
        port=addon.port,
        command=addon.command,
        size=target.size,
        health=addon.health,
        mounts=[{"name": volume.name, "mountPath": volume.path} for volume in storage],
        service_security=addon.security,
    )
    return _workload(
        kind="StatefulSet",
        target=target,
        service_id=addon.id,
        service_kind="addon",
        replicas=1,
        pod_spec=_pod_spec([container], addon.security),
        annotations=_pod_annotations(target, addon.id, env),
        claims=[_claim_template(target, addon.id, "addon", volume, cluster) for volume in storage],
    )


def service(target: RenderTarget, service_id: str, kind: str, port: int) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(service_id, target, target.service_labels(service_id, kind)),
        "spec": {
            "type": "ClusterIP",
            "selector": L.service_selector(target.deployment_id, service_id),
            "ports": [{"name": "main", "port": port, "targetPort": "main", "protocol": "TCP"}],
        },
    }


def headless_service_name(service_id: str) -> str:
    return f"{service_id}{HEADLESS_SUFFIX}"


def headless_service(target: RenderTarget, service_id: str, kind: str, port: int) -> dict:
    """The governing Service of a StatefulSet: no cluster IP, one DNS record per pod, for peers and
    stable identities. Clients keep using the regular Service (`service`), which balances over ready
    pods only."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(headless_service_name(service_id), target, target.service_labels(service_id, kind)),
        "spec": {
            "clusterIP": "None",
            # Peers must find each other before they are ready: a replica joins its primary, a cluster
            # bootstraps, only then does readiness pass. Client traffic never comes this way.
            "publishNotReadyAddresses": True,
            "selector": L.service_selector(target.deployment_id, service_id),
            "ports": [{"name": "main", "port": port, "targetPort": "main", "protocol": "TCP"}],
        },
    }


def custom_domain_secret(domain: str) -> str:
    return f"domain-{hashlib.sha256(domain.encode()).hexdigest()[:12]}-tls"


PLATFORM_TLS_SECRET = "public-tls"  # noqa: S105 - the name of a TLS Secret, not a password


def ingress(target: RenderTarget, cluster: ClusterSettings) -> dict | None:
    endpoints = public_hosts(target, cluster)
    if not endpoints:
        return None

    def rule(host: str, service_id: str, port: int) -> dict:
        backend = {"service": {"name": service_id, "port": {"number": port}}}
        return {"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}

    rules = [rule(host, component.id, port) for component, port, host in endpoints]
    main_component, main_port, _ = endpoints[0]
    rules += [rule(domain, main_component.id, main_port) for domain in target.custom_domains]
    # One certificate for our own hosts, one per custom domain: a domain whose
    # DNS is not set up yet must not hold back the others' certificates.
    tls = [{"hosts": [host for _, _, host in endpoints], "secretName": PLATFORM_TLS_SECRET}]
    tls += [{"hosts": [domain], "secretName": custom_domain_secret(domain)} for domain in target.custom_domains]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta("public", target, annotations={"cert-manager.io/cluster-issuer": cluster.cluster_issuer}),
        "spec": {"ingressClassName": cluster.ingress_class, "tls": tls, "rules": rules},
    }


def render(target: RenderTarget, cluster: ClusterSettings) -> list[dict]:
    """Every object of the deployment, in the order to apply them."""
    addons = target.present_addons()
    present = {c.id for c in target.spec.components} | {a.id for a in addons}
    environment = resolve_environment(
        target.spec,
        target.stage,
        generated=target.generated_secrets,
        overrides=target.env_overrides,
        present=present,
    )
    objects = [namespace(target)]
    for component in target.spec.components:
        objects.append(env_secret(target, component.id, "component", environment[component.id]))
    for addon in addons:
        objects.append(env_secret(target, addon.id, "addon", environment[addon.id]))
    # Only a development deployment clones in its namespace; a build clones in the builds namespace,
    # with its own copy (`cluster.builds.git_secrets`).
    if target.git_credentials is not None and target.mode == "source":
        objects += git.credentials_secrets(target.git_credentials, _meta(git.SECRET_NAME, target))
    workloads = [addon_workload(target, addon, environment[addon.id], cluster) for addon in addons]
    # A component built from the repository runs nothing until its first build succeeded (never the
    # template's base image, which holds none of the app's code): its workload is not rendered yet.
    workloads += [
        component_workload(target, component, environment[component.id], cluster)
        for component in target.spec.components
        if not target.awaits_build(component)
    ]
    for component in target.spec.components:
        objects.append(service(target, component.id, "component", component.port))
    for addon in addons:
        objects.append(service(target, addon.id, "addon", addon.port))
    ports = {c.id: c.port for c in target.spec.components} | {a.id: a.port for a in addons}
    for workload in workloads:
        if workload["kind"] == "StatefulSet":
            service_id, kind = workload["metadata"]["name"], workload["metadata"]["labels"][L.SERVICE_KIND]
            objects.append(headless_service(target, service_id, kind, ports[service_id]))
    public_ports = {component.id: port for component, port, _ in public_hosts(target, cluster)}
    objects += security.network_policies(
        lambda name: _meta(name, target),
        deployment_id=target.deployment_id,
        public_ports=public_ports,
        ingress_namespace=cluster.ingress_namespace,
    )
    claims = [claim for workload in workloads for claim in workload["spec"].get("volumeClaimTemplates", ())]
    meta = lambda name: _meta(name, target)  # noqa: E731 - the same metadata for both
    objects.append(security.resource_quota(meta, size=target.size, workloads=workloads, claims=claims))
    objects.append(security.limit_range(meta, size=target.size))
    objects += workloads
    public = ingress(target, cluster)
    if public:
        objects.append(public)
    return objects


def object_key(obj: Mapping) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name): what identifies an object for apply and prune."""
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]
