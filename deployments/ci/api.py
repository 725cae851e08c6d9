"""Diploi's JSON API for external CI (docs/api.md): a build token's bearer reports its project's
builds (started, progress, succeeded with the pushed digest, failed) and reads them back.

Every report goes through builds-core's services, exactly as the in-cluster builder's do: the
same state machine (compare-and-set), the same rollout. Only builds whose runner is "external"
take reports; a build of another project is, for the token, one that does not exist (404).
"""

from __future__ import annotations

import re
from functools import wraps

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from deployments.builds import services as builds
from deployments.builds.models import COMMIT_SHA, DIGEST, Build
from deployments.ci import services
from deployments.ci.jsonapi import ApiError, int_field, json_endpoint, json_object, text_field
from deployments.models import Deployment, DeploymentState, Project

MAX_ID = 2**63 - 1
COMMIT_MESSAGE_MAX = 10_000  # a whole message may come; its first line is kept


def _project(request) -> Project:
    """The project of the request's bearer token, or 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Send the project's build token: Authorization: Bearer <token>.")
    project = services.project_for_build_token(token.strip())
    if project is None:
        raise ApiError(401, "This build token is not valid (revoked or rotated?).")
    return project


def _url(value: str) -> str:
    if value and not re.match(r"^https?://[^\s]+$", value):
        raise ApiError(400, "“run_url” must be an http:// or https:// address.", field="run_url")
    return value


def _deployments(project: Project, data: dict) -> list[Deployment]:
    """The deployments a started report is for: ``deployment`` (a name or id) or every staging or
    production deployment following ``branch``."""
    has_deployment, has_branch = data.get("deployment") not in (None, ""), data.get("branch") not in (None, "")
    if has_deployment == has_branch:
        raise ApiError(400, "Give either “deployment” (its name or id) or “branch”.")
    live = Deployment.objects.live().filter(project=project).select_related("project__team", "template_version")
    if has_branch:
        branch = text_field(data, "branch", max_length=200)
        return [d for d in live.filter(branch=branch).order_by("pk") if services.builds_from_repository(d)]
    value = data["deployment"]
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
        found = live.filter(pk=value).first()
    elif isinstance(value, str) and len(value) <= 40:
        found = live.filter(name=value).first()
    else:
        raise ApiError(400, "“deployment” must be a deployment's name or id.", field="deployment")
    if found is None:
        raise ApiError(404, f"The project {project.slug} has no deployment {value!r}.", field="deployment")
    if found.state == DeploymentState.DELETING:
        raise ApiError(409, f"The deployment {found.name} is being deleted.", field="deployment")
    if not services.builds_from_repository(found):
        raise ApiError(
            409,
            f"The deployment {found.name} is a {found.stage} deployment: it runs code, not builds.",
            field="deployment",
        )
    return [found]


def _build(project: Project, build_id: int) -> Build:
    if build_id > MAX_ID:
        raise ApiError(404, "No such build.")
    build = Build.objects.filter(pk=build_id, project=project).select_related("deployment").first()
    if build is None:
        raise ApiError(404, "No such build.")
    if build.runner != Build.Runner.EXTERNAL:
        raise ApiError(409, f"Build {build.pk} is run by Diploi's {build.runner} builder: it takes no reports.")
    return build


def _report(call, **kwargs) -> JsonResponse:
    """Hand a report to builds-core's service: a state it no longer takes is 409, bad values 400."""
    try:
        build = call(**kwargs)
    except builds.BuildStateConflict as error:
        raise ApiError(409, " ".join(error.messages)) from None
    except ValidationError as error:
        raise ApiError(400, " ".join(error.messages)) from None
    return JsonResponse(services.build_summary(build))


@csrf_exempt
@json_endpoint("POST")
def build_started(request):
    project = _project(request)
    data = json_object(request.body)
    component = text_field(data, "component", max_length=63)
    commit = text_field(data, "commit", max_length=40).lower()
    if not COMMIT_SHA.match(commit):
        raise ApiError(400, "“commit” must be a full commit SHA (40 lowercase hex digits).", field="commit")
    run_url = _url(text_field(data, "run_url", max_length=500, required=False))
    external_id = text_field(data, "external_id", max_length=200, required=False)
    commit_message = text_field(data, "commit_message", max_length=COMMIT_MESSAGE_MAX, required=False)
    deployments = _deployments(project, data)
    spec = project.template.spec
    template_built = {c.id for c in spec.components if c.build is not None} if spec else set()
    for built in [set(builds.buildable_components(d)) for d in deployments] or [template_built]:
        if component not in built:
            choices = ", ".join(sorted(built)) or "none"
            raise ApiError(400, f"There is no built component {component!r} (built: {choices}).", field="component")
    try:
        started = services.external_builds_start(
            deployments=deployments,
            component=component,
            commit_sha=commit,
            run_url=run_url,
            external_id=external_id,
            commit_message=commit_message,
        )
    except ValidationError as error:
        raise ApiError(409, " ".join(error.messages)) from None
    # None: no deployment follows the branch, and the CI's job can stop there.
    return JsonResponse(
        {"builds": [services.build_summary(build) for build in started]}, status=201 if started else 200
    )


@csrf_exempt
@json_endpoint("GET")
def build_detail(request, build_id: int):
    project = _project(request)
    build = Build.objects.filter(pk=min(build_id, MAX_ID), project=project).select_related("deployment").first()
    if build is None:
        raise ApiError(404, "No such build.")
    return JsonResponse(services.build_summary(build))


def build_report(handler):
    """A report on one build: the token's project, the JSON body and the build are checked before
    ``handler(build, data)`` reads its own fields."""

    @csrf_exempt
    @json_endpoint("POST")
    @wraps(handler)
    def view(request, build_id: int):
        project = _project(request)
        data = json_object(request.body)
        return handler(_build(project, build_id), data)

    return view


@build_report
def build_progress(build: Build, data: dict):
    steps = int_field(data, "steps", minimum=1, maximum=1000)
    step = int_field(data, "step", minimum=0, maximum=steps)
    text = text_field(data, "text", max_length=300, required=False)
    return _report(builds.build_progress, build_id=build.pk, step=step, steps=steps, text=text)


@build_report
def build_succeeded(build: Build, data: dict):
    digest = text_field(data, "digest", max_length=100)
    if not DIGEST.match(digest):
        raise ApiError(400, "“digest” must be sha256: followed by 64 lowercase hex digits.", field="digest")
    return _report(builds.build_succeeded, build_id=build.pk, digest=digest)


@build_report
def build_failed(build: Build, data: dict):
    return _report(builds.build_failed, build_id=build.pk, message=text_field(data, "message", max_length=2000))


urlpatterns = [
    path("builds/started", build_started, name="api_build_started"),
    path("builds/<int:build_id>", build_detail, name="api_build"),
    path("builds/<int:build_id>/progress", build_progress, name="api_build_progress"),
    path("builds/<int:build_id>/succeeded", build_succeeded, name="api_build_succeeded"),
    path("builds/<int:build_id>/failed", build_failed, name="api_build_failed"),
]
