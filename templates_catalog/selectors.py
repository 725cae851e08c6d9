"""Read-side queries for the catalog pages and the admin: a fixed number of queries each."""

from __future__ import annotations

from django.db.models import Count, F, Q, QuerySet

from deployments.models import Deployment, DeploymentState
from templates_catalog.models import Template, TemplateVersion


def catalog_templates() -> QuerySet[Template]:
    """Templates shown in the catalog: enabled, with a valid version, by name."""
    return Template.objects.available().select_related("current_version").order_by("name")


def outdated_deployments(*, template: Template | None = None) -> QuerySet[Deployment]:
    """Live deployments created from another version of their template than its current one.

    Limited to ``template`` when given. A deployment's ``template_version`` is
    what it runs; ``template_version.template.current_version`` is the newest.
    """
    deployments = (
        Deployment.objects.live()
        .filter(template_version__template__current_version__isnull=False)
        .exclude(template_version=F("template_version__template__current_version"))
        .select_related("project", "template_version__template__current_version")
    )
    if template is not None:
        deployments = deployments.filter(template_version__template=template)
    return deployments


def deployments_of_version(version: TemplateVersion) -> QuerySet[Deployment]:
    """Live deployments created from ``version``, with their project."""
    return Deployment.objects.live().filter(template_version=version).select_related("project")


def templates_with_usage() -> QuerySet[Template]:
    """Templates annotated with ``deployment_count`` (live) and ``outdated_count`` (live, on an old version)."""
    live = Q(versions__deployments__isnull=False) & ~Q(versions__deployments__state=DeploymentState.DELETED)
    outdated = live & Q(current_version__isnull=False) & ~Q(versions__id=F("current_version_id"))
    return Template.objects.select_related("current_version").annotate(
        deployment_count=Count("versions__deployments", filter=live, distinct=True),
        outdated_count=Count("versions__deployments", filter=outdated, distinct=True),
    )
