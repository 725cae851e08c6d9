import base64
import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import kubernetes_validate
import pytest

from deployments.cluster import labels as L
from deployments.cluster.environment import missing_secrets
from deployments.cluster.manifests import (
    CLONE_SCRIPT,
    SFTP_SCRIPT,
    ClusterSettings,
    ManifestError,
    RenderTarget,
    render,
)
from deployments.cluster.security import namespace_labels
from deployments.sizes import SIZES
from templates_catalog.spec import TemplateSpec
from templates_catalog.validation import parse_template
from tests.conftest import need_service

CATALOG = Path(__file__).resolve().parents[3] / "templates_catalog" / "catalog"
KUBERNETES_VERSION = "1.37.0"
CLUSTER = ClusterSettings(base_domain="apps.example.com", ingress_class="traefik", cluster_issuer="le-prod")


def shipped_specs():
    return [parse_template(path.read_text(), path.name) for path in sorted(CATALOG.glob("*.yaml"))]


def target_for(spec, stage, **changes) -> RenderTarget:
    base = RenderTarget(
        deployment_id=42,
        name="feature-x",
        project="shop",
        namespace="shop-feature-x-a1b2c3",
        stage=stage,
        spec=spec,
        repository="https://github.com/acme/shop.git",
        branch="main",
        size=SIZES["small"],
        generated_secrets=missing_secrets(spec, {}),
        # Staging and production run what was built: an image pinned by digest for each built component.
        built_images={c.id: f"registry.example.com/diploi/shop/{c.id}@{EXAMPLE_DIGEST}" for c in spec.components},
    )
    return replace(base, **changes)


EXAMPLE_DIGEST = "sha256:" + "e" * 64


def by_kind(objects, kind):
    return [obj for obj in objects if obj["kind"] == kind]


def spec_of(slug):
    return parse_template((CATALOG / f"{slug}.yaml").read_text(), f"{slug}.yaml")


def django_spec():
    return spec_of("django-postgres")


@pytest.mark.parametrize("spec", shipped_specs(), ids=lambda s: s.slug)
def test_it_renders_every_shipped_template_in_every_stage_into_valid_objects(spec):
    for stage in spec.stages:
        objects = render(target_for(spec, stage, custom_domains=("www.example.org",)), CLUSTER)
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{spec.slug} {stage} {obj['kind']}/{obj['metadata']['name']}: {error}")


@pytest.mark.parametrize("spec", shipped_specs(), ids=lambda s: s.slug)
def test_it_labels_every_object_and_puts_the_namespace_first(spec):
    for stage in spec.stages:
        objects = render(target_for(spec, stage), CLUSTER)
        assert objects[0] == {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "shop-feature-x-a1b2c3",
                "labels": {
                    **L.ownership(project="shop", deployment_id=42, stage=stage),
                    **namespace_labels([c.security.level for c in (*spec.components, *spec.addons)]),
                },
            },
        }
        for obj in objects:
            labels = obj["metadata"]["labels"]
            assert labels[L.MANAGED_BY] == "diploi"
            assert labels[L.PART_OF] == "shop"
            assert labels[L.DEPLOYMENT] == "42"
            assert labels[L.STAGE] == stage
            if obj["kind"] in ("StatefulSet", "Deployment"):
                assert obj["spec"]["template"]["metadata"]["labels"][L.DEPLOYMENT] == "42"
                for claim in obj["spec"].get("volumeClaimTemplates", []):
                    assert claim["metadata"]["labels"][L.DEPLOYMENT] == "42"


def test_it_clones_the_code_once_onto_a_volume_in_development():
    objects = render(target_for(django_spec(), "development", branch="feature/login"), CLUSTER)
    app = next(o for o in by_kind(objects, "StatefulSet") if o["metadata"]["name"] == "app")
    pod = app["spec"]["template"]["spec"]
    clone = pod["initContainers"][0]
    assert clone["command"] == [
        "sh",
        "-c",
        CLONE_SCRIPT,
        "/workspace",
        "feature/login",
        "https://github.com/acme/shop.git",
    ]
    assert ".diploi-cloned" in CLONE_SCRIPT  # cloned only when the volume has never been filled
    container = pod["containers"][0]
    assert {"name": "code", "mountPath": "/app", "subPath": "code"} in container["volumeMounts"]
    assert container["workingDir"] == "/app"
    assert [c["metadata"]["name"] for c in app["spec"]["volumeClaimTemplates"]] == ["code"]
    assert by_kind(objects, "Deployment") == []


def test_it_provides_sftp_server_in_development_when_the_template_says_so():
    objects = render(target_for(django_spec(), "development"), CLUSTER)
    pod = next(o for o in by_kind(objects, "StatefulSet") if o["metadata"]["name"] == "app")["spec"]["template"]["spec"]
    clone, sftp = pod["initContainers"]
    assert sftp["name"] == "sftp-server" and sftp["image"] == CLUSTER.sftp_image
    assert sftp["command"] == ["sh", "-c", SFTP_SCRIPT, "/workspace"]
    assert sftp["volumeMounts"] == [{"name": "code", "mountPath": "/workspace", "subPath": "diploi-tools"}]
    assert sftp["securityContext"] == clone["securityContext"]  # as the component's user, no capability
    assert "exit 0" in SFTP_SCRIPT.splitlines()[-1]  # never keeps the app from starting
    tools = {"name": "code", "mountPath": "/opt/diploi/bin", "subPath": "diploi-tools", "readOnly": True}
    assert tools in pod["containers"][0]["volumeMounts"]

    spec = django_spec()
    without = replace(spec, components=tuple(replace(c, provide_sftp_server=False) for c in spec.components))
    objects = render(target_for(without, "development"), CLUSTER)
    pod = next(o for o in by_kind(objects, "StatefulSet") if o["metadata"]["name"] == "app")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["clone"]
    assert all(m["mountPath"] != "/opt/diploi/bin" for m in pod["containers"][0]["volumeMounts"])


def test_the_sftp_step_copies_the_init_images_own_sftp_server_without_network(tmp_path):
    """Run as the init container runs it (`sh -c SFTP_SCRIPT DEST`), here: this machine stands for an image
    that has OpenSSH's sftp-server, so nothing is fetched; a second run finds it in place."""
    own = Path("/usr/lib/openssh/sftp-server")
    if not os.access(own, os.X_OK):
        need_service(f"{own} (Debian: apt-get install openssh-sftp-server)")
    first = subprocess.run(["sh", "-c", SFTP_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert first.returncode == 0 and first.stderr == ""
    assert first.stdout == f"sftp-server is in place for SFTP and scp over SSH (from this image's {own}).\n"
    assert (tmp_path / "sftp-server").read_bytes() == own.read_bytes()
    assert os.access(tmp_path / "sftp-server", os.X_OK)
    again = subprocess.run(["sh", "-c", SFTP_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert (again.returncode, again.stdout) == (0, "sftp-server is already in place.\n")


def test_it_passes_user_values_as_arguments_never_inside_the_script():
    hostile = "main; rm -rf / #"
    objects = render(
        target_for(django_spec(), "development", branch=hostile, repository="https://x/$(id).git"), CLUSTER
    )
    clone = by_kind(objects, "StatefulSet")[-1]["spec"]["template"]["spec"]["initContainers"][0]
    script = clone["command"][2]
    assert script == CLONE_SCRIPT
    assert clone["command"][4:] == [hostile, "https://x/$(id).git"]


@pytest.mark.parametrize("stage", ["staging", "production"])
def test_it_runs_the_image_fresh_without_a_code_volume_in_build_stages(stage):
    spec = django_spec()
    objects = render(target_for(spec, stage, image_overrides={"app": "registry.example.com/shop:abc123"}), CLUSTER)
    (app,) = by_kind(objects, "Deployment")
    container = app["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/shop:abc123"
    assert "volumeMounts" not in container
    assert "initContainers" not in app["spec"]["template"]["spec"]
    assert container["command"] == list(spec.component("app").command_for(stage, "build"))
    assert container["readinessProbe"]["tcpSocket"] == {"port": 8000}
    assert container["livenessProbe"]["tcpSocket"] == {"port": 8000}
    assert app["spec"]["replicas"] == spec.component("app").replicas_for(stage)


def test_it_gives_each_addon_a_statefulset_with_its_claim():
    objects = render(target_for(django_spec(), "production"), CLUSTER)
    postgres = next(o for o in by_kind(objects, "StatefulSet") if o["metadata"]["name"] == "postgres")
    claim = postgres["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"].endswith("Gi")
    assert claim["metadata"]["labels"][L.SERVICE] == "postgres"


# ----------------------------------------------------------------------------- pod security (issue 15, item 3)


def test_only_the_namespace_and_the_ingress_controller_reach_the_pods():
    objects = render(target_for(django_spec(), "production"), CLUSTER)
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(objects, "NetworkPolicy")}
    assert policies == {
        "same-namespace-only": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
        },
        "app-from-ingress": {
            "podSelector": {"matchLabels": {L.DEPLOYMENT: "42", L.SERVICE: "app"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
                    "ports": [{"protocol": "TCP", "port": 8000}],
                }
            ],
        },
    }


@pytest.mark.parametrize("spec", shipped_specs(), ids=lambda s: s.slug)
def test_every_container_drops_every_capability_and_never_escalates(spec):
    for stage in spec.stages:
        objects = render(target_for(spec, stage), CLUSTER)
        for workload in by_kind(objects, "StatefulSet") + by_kind(objects, "Deployment"):
            pod = workload["spec"]["template"]["spec"]
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            for container in pod["containers"] + pod.get("initContainers", []):
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False
                assert context["capabilities"]["drop"] == ["ALL"]


def test_the_namespace_is_restricted_when_every_image_allows_it_else_baseline():
    django = render(target_for(django_spec(), "development"), CLUSTER)[0]["metadata"]["labels"]
    nginx = render(target_for(spec_of("static-nginx"), "development"), CLUSTER)[0]["metadata"]["labels"]
    assert django["pod-security.kubernetes.io/enforce"] == "restricted"
    assert nginx["pod-security.kubernetes.io/enforce"] == "baseline"
    assert nginx["pod-security.kubernetes.io/warn"] == "restricted"


def test_postgres_runs_as_its_own_user_and_the_app_clones_as_its_user():
    objects = render(target_for(django_spec(), "development"), CLUSTER)
    pods = {w["metadata"]["name"]: w["spec"]["template"]["spec"] for w in by_kind(objects, "StatefulSet")}
    assert pods["postgres"]["securityContext"] == {
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsNonRoot": True,
        "runAsUser": 999,
        "runAsGroup": 999,
        "fsGroup": 999,
        "fsGroupChangePolicy": "OnRootMismatch",
    }
    assert "add" not in pods["postgres"]["containers"][0]["securityContext"]["capabilities"]
    assert pods["app"]["securityContext"]["runAsUser"] == 1000
    assert pods["app"]["initContainers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_nginx_gets_back_only_the_capabilities_it_needs():
    objects = render(target_for(spec_of("static-nginx"), "production"), CLUSTER)
    (web,) = by_kind(objects, "Deployment")
    capabilities = web["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]
    assert capabilities == {"drop": ["ALL"], "add": ["CHOWN", "SETUID", "SETGID", "NET_BIND_SERVICE"]}


def test_a_spec_without_security_keeps_a_root_entrypoint_working():
    data = django_spec().to_dict()
    for addon in data["addons"]:
        del addon["security"]
    objects = render(target_for(TemplateSpec.from_dict(data), "production"), CLUSTER)
    postgres = next(o for o in by_kind(objects, "StatefulSet") if o["metadata"]["name"] == "postgres")
    added = postgres["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["add"]
    assert {"CHOWN", "SETUID", "SETGID", "DAC_OVERRIDE", "FOWNER"} <= set(added) and "NET_RAW" not in added


def test_development_servers_get_a_startup_probe_and_every_liveness_its_own_timeout():
    dev = render(target_for(django_spec(), "development"), CLUSTER)
    prod = render(target_for(django_spec(), "production"), CLUSTER)
    dev_app = next(o for o in by_kind(dev, "StatefulSet") if o["metadata"]["name"] == "app")
    container = dev_app["spec"]["template"]["spec"]["containers"][0]
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] == 600
    assert container["livenessProbe"]["timeoutSeconds"] == 5
    (prod_app,) = by_kind(prod, "Deployment")
    assert "startupProbe" not in prod_app["spec"]["template"]["spec"]["containers"][0]


def test_the_quota_and_limits_follow_the_deployments_size():
    objects = render(target_for(django_spec(), "production", size=SIZES["medium"]), CLUSTER)
    (quota,) = by_kind(objects, "ResourceQuota")
    (limits,) = by_kind(objects, "LimitRange")
    # 2 app replicas + 1 surge pod + postgres + 2 spare pods, each of the medium size.
    assert quota["spec"]["hard"]["pods"] == "6"
    assert quota["spec"]["hard"]["limits.cpu"] == "12000m" and quota["spec"]["hard"]["limits.memory"] == "12288Mi"
    assert quota["spec"]["hard"]["requests.storage"] == "5120Mi"
    assert limits["spec"]["limits"][0]["max"] == SIZES["medium"].resources()["limits"]


@pytest.mark.parametrize("spec", shipped_specs(), ids=lambda s: s.slug)
def test_shipped_images_pin_a_minor_version(spec):
    import re

    for service in (*spec.components, *spec.addons):
        assert re.search(r":\d+\.\d+", service.image), service.image


def test_it_publishes_https_hosts_with_cert_manager_and_separate_certificates_for_custom_domains():
    objects = render(target_for(django_spec(), "production", custom_domains=("shop.example.org",)), CLUSTER)
    (ingress,) = by_kind(objects, "Ingress")
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "le-prod"}
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [
        "app-feature-x.shop.apps.example.com",
        "shop.example.org",
    ]
    tls = ingress["spec"]["tls"]
    assert tls[0] == {"hosts": ["app-feature-x.shop.apps.example.com"], "secretName": "public-tls"}
    assert tls[1]["hosts"] == ["shop.example.org"] and tls[1]["secretName"] != "public-tls"


def test_it_sizes_every_container_and_scales_a_disabled_deployment_to_zero():
    objects = render(target_for(django_spec(), "production", size=SIZES["medium"], enabled=False), CLUSTER)
    for workload in by_kind(objects, "StatefulSet") + by_kind(objects, "Deployment"):
        assert workload["spec"]["replicas"] == 0
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert container["resources"] == SIZES["medium"].resources()


def test_it_marks_a_restart_on_the_pod_template_of_the_restarted_service_only():
    spec = django_spec()
    objects = render(target_for(spec, "development", restart_marks={"app": "2026-11-26T10:00:00+00:00"}), CLUSTER)
    annotations = {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["annotations"] for o in by_kind(objects, "StatefulSet")
    }
    assert annotations["app"][L.RESTARTED_AT_ANNOTATION] == "2026-11-26T10:00:00+00:00"
    assert L.RESTARTED_AT_ANNOTATION not in annotations["postgres"]
    everything = render(target_for(spec, "development", restart_marks={"*": "2026-11-26T11:00:00+00:00"}), CLUSTER)
    for workload in by_kind(everything, "StatefulSet"):
        assert (
            workload["spec"]["template"]["metadata"]["annotations"][L.RESTARTED_AT_ANNOTATION]
            == "2026-11-26T11:00:00+00:00"
        )


def secret_values(objects, name):
    secret = next(o for o in by_kind(objects, "Secret") if o["metadata"]["name"] == name)
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def test_it_resolves_imports_and_references_into_each_services_secret():
    spec = django_spec()
    target = target_for(spec, "production")
    objects = render(target, CLUSTER)
    app_env = secret_values(objects, "app-env")
    postgres_env = secret_values(objects, "postgres-env")
    assert (
        app_env["POSTGRES_PASSWORD"]
        == postgres_env["POSTGRES_PASSWORD"]
        == target.generated_secrets["postgres.POSTGRES_PASSWORD"]
    )
    assert app_env["DATABASE_URL"] == (
        f"postgres://{postgres_env['POSTGRES_USER']}:{postgres_env['POSTGRES_PASSWORD']}"
        f"@{app_env['POSTGRES_HOST']}:{app_env['POSTGRES_PORT']}/{postgres_env['POSTGRES_DB']}"
    )
    assert "${" not in "".join(app_env.values())
    # The env checksum rolls the pods when the environment changes.
    changed = render(replace(target, env_overrides={"app": {"DJANGO_DEBUG": "true"}}), CLUSTER)
    checksum = lambda objs: next(o for o in objs if o["metadata"]["name"] == "app" and o["kind"] == "Deployment")[  # noqa: E731
        "spec"
    ]["template"]["metadata"]["annotations"][L.ENV_CHECKSUM_ANNOTATION]
    assert checksum(objects) != checksum(changed)
    assert secret_values(changed, "app-env")["DJANGO_DEBUG"] == "true"


def test_it_renders_the_same_objects_twice():
    target = target_for(django_spec(), "development")
    assert render(target, CLUSTER) == render(target, CLUSTER)


def test_it_refuses_a_public_host_longer_than_a_dns_label():
    with pytest.raises(ManifestError, match="longer than 63"):
        render(target_for(django_spec(), "production", name="a" * 60), CLUSTER)


@pytest.mark.parametrize("stage", ["staging", "production"])
def test_build_stages_run_the_built_image_pinned_by_digest(stage):
    objects = render(target_for(django_spec(), stage), CLUSTER)
    (app,) = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == "app"]
    assert app["spec"]["template"]["spec"]["containers"][0]["image"] == (
        f"registry.example.com/diploi/shop/app@{EXAMPLE_DIGEST}"
    )


def test_until_the_first_build_succeeded_a_built_component_runs_nothing_never_the_base_image():
    objects = render(target_for(django_spec(), "staging", built_images={}), CLUSTER)
    workloads = {o["metadata"]["name"] for o in objects if o["kind"] in ("Deployment", "StatefulSet")}
    assert workloads == {"postgres"}
    assert not any("python:3.12-slim" in json.dumps(o) for o in objects)
    # Its Service and environment are there already, for the moment it runs.
    assert {"app", "app-env"} <= {o["metadata"]["name"] for o in objects if o["kind"] in ("Service", "Secret")}


# ----------------------------------------------------------------------------- headless Services (issue 15, item 3)


@pytest.mark.parametrize("spec", shipped_specs(), ids=lambda s: s.slug)
def test_every_statefulset_names_a_headless_service_of_its_own_and_clients_keep_theirs(spec):
    for stage in spec.stages:
        objects = render(target_for(spec, stage), CLUSTER)
        services = {o["metadata"]["name"]: o for o in by_kind(objects, "Service")}
        statefulsets = by_kind(objects, "StatefulSet")
        headless = {name for name, s in services.items() if s["spec"].get("clusterIP") == "None"}
        assert headless == {f"{s['metadata']['name']}-headless" for s in statefulsets}, (spec.slug, stage)
        for workload in statefulsets:
            name = workload["metadata"]["name"]
            governing = services[workload["spec"]["serviceName"]]
            assert governing["metadata"]["name"] == f"{name}-headless"
            assert governing["spec"]["selector"] == workload["spec"]["selector"]["matchLabels"]
            assert governing["metadata"]["labels"] == workload["metadata"]["labels"]  # owned and pruned alike
            # The regular Service stays what clients (POSTGRES_HOST=postgres) reach.
            assert services[name]["spec"]["type"] == "ClusterIP" and "clusterIP" not in services[name]["spec"]
            assert services[name]["spec"]["ports"] == governing["spec"]["ports"]


def test_the_headless_service_publishes_peers_before_they_are_ready():
    objects = render(target_for(django_spec(), "production"), CLUSTER)
    headless = next(o for o in by_kind(objects, "Service") if o["metadata"]["name"] == "postgres-headless")
    assert headless["spec"] == {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": {L.DEPLOYMENT: "42", L.SERVICE: "postgres"},
        "ports": [{"name": "main", "port": 5432, "targetPort": "main", "protocol": "TCP"}],
    }
    assert headless["metadata"]["labels"][L.SERVICE_KIND] == "addon"
    # A Deployment (the production app) has no governing Service.
    assert {o["metadata"]["name"] for o in by_kind(objects, "Deployment")} == {"app"}
    assert "app-headless" not in {o["metadata"]["name"] for o in by_kind(objects, "Service")}


def test_a_component_awaiting_its_first_build_gets_no_headless_service_yet():
    spec = django_spec()
    objects = render(target_for(spec, "staging", built_images={}), CLUSTER)
    assert {o["metadata"]["name"] for o in by_kind(objects, "Service")} == {"app", "postgres", "postgres-headless"}
