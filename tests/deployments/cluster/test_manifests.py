import base64
from dataclasses import replace
from pathlib import Path

import kubernetes_validate
import pytest

from deployments.cluster import labels as L
from deployments.cluster.environment import missing_secrets
from deployments.cluster.manifests import CLONE_SCRIPT, ClusterSettings, ManifestError, RenderTarget, render
from deployments.sizes import SIZES
from templates_catalog.validation import parse_template

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
    )
    return replace(base, **changes)


def by_kind(objects, kind):
    return [obj for obj in objects if obj["kind"] == kind]


def django_spec():
    return parse_template((CATALOG / "django-postgres.yaml").read_text(), "django-postgres.yaml")


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
                "labels": L.ownership(project="shop", deployment_id=42, stage=stage),
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


def test_it_gives_each_addon_a_statefulset_with_its_claim_and_a_network_policy():
    objects = render(target_for(django_spec(), "production"), CLUSTER)
    postgres = next(o for o in by_kind(objects, "StatefulSet") if o["metadata"]["name"] == "postgres")
    claim = postgres["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"].endswith("Gi")
    assert claim["metadata"]["labels"][L.SERVICE] == "postgres"
    (policy,) = by_kind(objects, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"] == {L.DEPLOYMENT: "42", L.SERVICE: "postgres"}
    assert policy["spec"]["ingress"] == [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 5432}]}]


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
