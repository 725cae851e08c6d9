"""What the project settings page shows of a project's builds: the runner, the secrets' existence
(never their values), the webhook address, the deploy key's public half, the HTTPS token's hint and
the workflow file."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse

from deployments.ci.models import BuildToken, DeployKey, RepositoryToken, WebhookSecret
from deployments.ci.workflow import WORKFLOW_PATH, built_components, github_workflow
from deployments.models import BuildRunner, Membership, Project, Role


def public_url(request, path: str) -> str:
    """``path`` as an absolute address of this Diploi: PUBLIC_URL's, else the request's."""
    return f"{settings.PUBLIC_URL}{path}" if settings.PUBLIC_URL else request.build_absolute_uri(path)


def registry_host() -> str:
    """The host part of REGISTRY (``registry.example.com/diploi`` → ``registry.example.com``)."""
    return (settings.REGISTRY or "").split("/", 1)[0]


@dataclass(frozen=True)
class CiOverview:
    can_manage: bool
    runner_choice: str
    runner_choices: list
    effective_runner: str
    default_runner: str
    token: BuildToken | None
    webhook: WebhookSecret | None
    webhook_url: str
    deploy_key: DeployKey | None
    repository_token: RepositoryToken | None
    api_url: str
    workflow_path: str
    workflow: str
    built: list


def ci_overview(request, project: Project, membership: Membership) -> CiOverview:
    spec = project.template.spec
    api_url = public_url(request, "/api/v1")
    return CiOverview(
        can_manage=membership.allows(Role.ADMIN),
        runner_choice=project.build_runner,
        runner_choices=BuildRunner.choices,
        effective_runner=project.effective_build_runner,
        default_runner=settings.BUILD_RUNNER,
        token=BuildToken.objects.filter(project=project).first(),
        webhook=WebhookSecret.objects.filter(project=project).first(),
        webhook_url=public_url(request, reverse("github_push_hook", args=[project.slug])),
        deploy_key=DeployKey.objects.filter(project=project).first(),
        repository_token=RepositoryToken.objects.filter(project=project).first(),
        api_url=api_url,
        workflow_path=WORKFLOW_PATH,
        workflow=github_workflow(spec=spec, api_url=api_url, registry_host=registry_host()) if spec else "",
        built=built_components(spec) if spec else [],
    )
