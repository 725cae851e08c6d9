import io

import pytest
import yaml
from django.core.management import CommandError, call_command

from deployments import services


def run(*args) -> list[dict]:
    out = io.StringIO()
    call_command("manifests", *args, stdout=out)
    return list(yaml.safe_load_all(out.getvalue()))


def test_it_prints_an_example_deployment_of_a_template_in_a_stage(catalog):
    objects = run("--template", "django-postgres", "--stage", "production")
    assert objects[0]["kind"] == "Namespace"
    assert {o["kind"] for o in objects} >= {
        "Secret",
        "Service",
        "StatefulSet",
        "Deployment",
        "Ingress",
        "NetworkPolicy",
    }


def test_it_writes_plain_yaml_without_anchors(catalog):
    # A shared probe action would otherwise come out as &id001 / *id001, which people reviewing it trip over.
    out = io.StringIO()
    call_command("manifests", "--template", "django-postgres", "--stage", "development", stdout=out)
    assert "&id" not in out.getvalue() and "*id" not in out.getvalue()


def test_it_prints_what_would_be_applied_for_a_deployment(make_project, developer):
    deployment = services.deployment_create(
        project=make_project(), name="feature-x", stage="development", actor=developer
    )
    objects = run(str(deployment.pk))
    assert objects[0]["metadata"]["name"] == deployment.namespace
    clone = next(o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "app")
    assert clone["spec"]["template"]["spec"]["initContainers"][0]["command"][-1] == "https://github.com/acme/shop.git"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Give a deployment id, or --template with --stage."),
        (("999999",), "There is no deployment 999999."),
        (("--template", "nope", "--stage", "production"), "There is no loaded template “nope”"),
        (("--template", "static-nginx", "--stage", "qa"), "--stage must be one of: development, staging, production."),
    ],
)
def test_it_explains_what_is_wrong_with_its_arguments(catalog, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
