"""The GitHub Actions workflow Diploi offers: valid YAML with the right steps for each template, and
its scripts, run with bash, curl and jq as a runner would, drive the real API to a rollout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deployments import services as deployment_services
from deployments.builds.models import Build
from deployments.ci import services
from deployments.ci.workflow import BUILD_PUSH_ACTION, built_components, github_workflow
from deployments.models import Deployment
from tests.conftest import need_service
from tests.deployments.cluster.test_manifests import shipped_specs

DIGEST = "sha256:" + "e" * 64


def workflow_for(spec, api_url="https://diploi.example.com/api/v1") -> dict:
    return yaml.safe_load(github_workflow(spec=spec, api_url=api_url, registry_host="registry.example.com"))


def steps_of(workflow: dict) -> dict:
    return {step.get("id") or step.get("name") or step["uses"]: step for step in workflow["jobs"]["build"]["steps"]}


@pytest.mark.parametrize("spec", shipped_specs(), ids=lambda s: s.slug)
def test_it_builds_every_built_component_with_build_push_action(spec):
    workflow = workflow_for(spec)
    job = workflow["jobs"]["build"]

    assert set(workflow["on"]) == {"push", "workflow_dispatch"}
    assert workflow["permissions"] == {"contents": "read"}
    include = job["strategy"]["matrix"]["include"]
    expected = [c for c in spec.components if c.build is not None]
    assert [row["component"] for row in include] == [c.id for c in expected]
    for row, component in zip(include, expected, strict=True):
        assert row["context"] == component.build.context
        assert row["dockerfile"].endswith(component.build.dockerfile)
    steps = steps_of(workflow)
    build = steps["build"]
    assert build["uses"] == BUILD_PUSH_ACTION
    assert build["with"] == {
        "context": "${{ matrix.context }}",
        "file": "${{ matrix.dockerfile }}",
        "push": True,
        "tags": "${{ steps.started.outputs.images }}",
    }
    assert steps["docker/login-action@v3"]["with"]["registry"] == "registry.example.com"
    assert job["env"]["DIPLOI_TOKEN"] == "${{ secrets.DIPLOI_BUILD_TOKEN }}"
    assert steps["Report the image to Diploi"]["env"]["DIGEST"] == "${{ steps.build.outputs.digest }}"
    assert steps["Report the image to Diploi"]["if"].startswith("success()")
    assert steps["Report the failure to Diploi"]["if"].startswith("failure()")
    for step in steps.values():
        if "run" in step:
            checked = subprocess.run(["bash", "-n"], input=step["run"], capture_output=True, text=True)
            assert checked.returncode == 0, checked.stderr


def test_a_context_in_a_subdirectory_names_its_dockerfile_from_the_repository_root():
    from dataclasses import replace

    from templates_catalog.spec import Build as BuildSpec

    spec = next(s for s in shipped_specs() if s.slug == "django-postgres")
    app = replace(spec.components[0], build=BuildSpec(dockerfile="Dockerfile.prod", context="backend/"))
    assert built_components(replace(spec, components=(app,))) == [("app", "backend/Dockerfile.prod", "backend")]


@pytest.fixture
def runner_tools():
    for tool in ("bash", "curl", "jq"):
        if shutil.which(tool) is None:
            need_service(f"{tool} runs the workflow's scripts as a GitHub runner does")


def run_step(step: dict, env: dict, tmp_path: Path) -> dict[str, str]:
    """Run one `run:` step with bash as a runner does; returns what it wrote to $GITHUB_OUTPUT."""
    outputs = tmp_path / "github_output"
    outputs.write_text("")
    environment = {**os.environ, **env, **step.get("env", {}), "GITHUB_OUTPUT": str(outputs)}
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", step["run"]], env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)


def test_its_scripts_drive_the_api_from_start_to_rollout(
    live_server, runner_tools, external_project, admin_member, repository, tmp_path
):
    staging = deployment_services.deployment_create(
        project=external_project, name="staging", stage="staging", actor=admin_member
    )
    token = services.build_token_rotate(project=external_project, actor=admin_member)
    steps = steps_of(workflow_for(external_project.template.spec, api_url=f"{live_server.url}/api/v1"))
    env = {
        "DIPLOI_API": f"{live_server.url}/api/v1",
        "DIPLOI_TOKEN": token,
        "COMPONENT": "app",
        "GITHUB_REF_NAME": "main",
        "GITHUB_SHA": repository.first,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_RUN_ID": "42",
    }

    assert steps["started"]["env"] == {"COMMIT_MESSAGE": "${{ github.event.head_commit.message }}"}
    Build.objects.filter(deployment=staging).update(commit_message="")  # as a push without its message asked
    message = 'Ship it; $(touch pwned) `id` "quoted"\n\nThe body.'  # the pusher's text, never run
    outputs = run_step({**steps["started"], "env": {"COMMIT_MESSAGE": message}}, env, tmp_path)
    build = Build.objects.get(deployment=staging)
    assert build.commit_message == message.splitlines()[0]
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert outputs == {"ids": str(build.pk), "images": f"{build.image}:{repository.first}"}
    assert Build.objects.get(pk=build.pk).run_url == "https://github.com/acme/shop/actions/runs/42"
    ids = {"BUILD_IDS": outputs["ids"]}
    run_step({**steps["Report progress"], "env": ids}, env, tmp_path)
    assert Build.objects.get(pk=build.pk).step_text == "Building and pushing the image"
    run_step({**steps["Report the image to Diploi"], "env": {**ids, "DIGEST": DIGEST}}, env, tmp_path)

    assert Build.objects.get(pk=build.pk).state == "succeeded"
    assert Deployment.objects.get(pk=staging.pk).built_images == {"app": f"{build.image}@{DIGEST}"}


def test_its_failure_script_reports_the_failure_and_nobody_following_stops_the_job(
    live_server, runner_tools, external_project, admin_member, repository, tmp_path
):
    staging = deployment_services.deployment_create(
        project=external_project, name="staging", stage="staging", actor=admin_member
    )
    token = services.build_token_rotate(project=external_project, actor=admin_member)
    steps = steps_of(workflow_for(external_project.template.spec))
    env = {
        "DIPLOI_API": f"{live_server.url}/api/v1",
        "DIPLOI_TOKEN": token,
        "COMPONENT": "app",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_RUN_ID": "43",
        "GITHUB_SHA": repository.first,
    }
    assert run_step(steps["started"], {**env, "GITHUB_REF_NAME": "feature"}, tmp_path) == {"ids": "", "images": ""}

    outputs = run_step(steps["started"], {**env, "GITHUB_REF_NAME": "main"}, tmp_path)
    run_step({**steps["Report the failure to Diploi"], "env": {"BUILD_IDS": outputs["ids"]}}, env, tmp_path)
    build = Build.objects.get(deployment=staging)
    assert build.state == "failed"
    assert build.message == "The GitHub Actions run failed: https://github.com/acme/shop/actions/runs/43"
