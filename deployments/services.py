"""Writes to teams, projects and deployments. Views, forms, the admin and commands call these.

Each service is keyword-only and atomic, writes an audit row, and leaves
cluster work to Celery tasks enqueued on commit (a deployment's save hook
enqueues the reconcile; restart and delete record an `Operation` first).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments import events
from deployments.cluster.connection import cluster_settings
from deployments.cluster.environment import EnvironmentTooLarge, missing_secrets, resolve_environment
from deployments.cluster.manifests import ManifestError, public_hosts
from deployments.dispatch import send_on_commit
from deployments.hosts.services import claim_hosts, normalize_domains, platform_host_problems
from deployments.models import (
    Deployment,
    DeploymentState,
    Membership,
    Operation,
    Project,
    Role,
    Stage,
    Team,
    record_activity,
)
from deployments.naming import dns_label_error, namespace_for, repository_error
from deployments.sizes import SIZES
from deployments.ssh.sessions import sessions_close_for_deployment, sessions_close_for_role
from templates_catalog.models import Template

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LIVE_STATES = (DeploymentState.CREATING, DeploymentState.RUNNING, DeploymentState.RESTARTING, DeploymentState.FAILED)


# ----------------------------------------------------------------------------- bootstrap


@transaction.atomic
def first_admin_create(*, username: str = "admin") -> tuple[object, str] | None:
    """Create the first superuser with a random password and a team for them.

    Returns ``(user, password)``, or None when a superuser already exists
    (idempotent: it never resets anyone's password).
    """
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    user = User.objects.create_superuser(username=username, email="", password=password)
    team, _ = Team.objects.get_or_create(slug="my-team", defaults={"name": "My team"})
    Membership.objects.get_or_create(team=team, user=user, defaults={"role": Role.ADMIN})
    record_activity(action="user.bootstrap", message=f"First administrator “{username}” created", team=team)
    return user, password


# ----------------------------------------------------------------------------- projects

# Short names are unique across the installation: public hosts are `….<project>.<base domain>`.
_SLUG_TAKEN = "The short name “{slug}” is already taken on this Diploi: pick another."


@transaction.atomic
def project_create(*, team: Team, name: str, slug: str, template: Template, repository: str, actor) -> Project:
    """Create a project of ``team`` from ``template``. Raises ValidationError with per-field messages."""
    problems = {}
    error = dns_label_error(slug)
    if error:
        problems["slug"] = f"The short name {error}."
    elif len(slug) > 30:
        problems["slug"] = "The short name must be at most 30 characters."
    elif Project.objects.filter(slug=slug).exists():
        problems["slug"] = _SLUG_TAKEN.format(slug=slug)
    if not name.strip():
        problems["name"] = "Give the project a name."
    if template.current_version_id is None or not template.enabled:
        problems["template"] = "This template is not available."
    elif problem := repository_problem(template, repository):
        problems["repository"] = problem
    if problems:
        raise ValidationError(problems)
    try:
        with transaction.atomic():
            project = Project.objects.create(
                team=team, name=name.strip(), slug=slug, template=template, repository=repository, created_by=actor
            )
    except IntegrityError:
        raise ValidationError({"slug": _SLUG_TAKEN.format(slug=slug)}) from None
    record_activity(
        action="project.created",
        message=f"Project “{project.name}” created from {template.name}",
        actor=actor,
        project=project,
    )
    events.publish_team_changed(team.pk)
    return project


@transaction.atomic
def project_update(*, project: Project, name: str, repository: str, actor) -> Project:
    """Rename a project or change its repository; records what changed. Idempotent: no change, no audit row.

    Development deployments keep the code they already cloned; new clones use the new repository.
    Raises ValidationError with per-field messages; nothing is written then.
    """
    problems = {}
    if not name.strip():
        problems["name"] = "Give the project a name."
    if problem := repository_problem(project.template, repository):
        problems["repository"] = problem
    if problems:
        raise ValidationError(problems)
    changes = {
        field: [getattr(project, field), value]
        for field, value in (("name", name.strip()), ("repository", repository))
        if getattr(project, field) != value
    }
    if not changes:
        return project
    for field, (_, value) in changes.items():
        setattr(project, field, value)
    project.save(update_fields=list(changes))
    described = "; ".join(f"{field} “{old or 'none'}” → “{new or 'none'}”" for field, (old, new) in changes.items())
    record_activity(action="project.updated", message=f"Project changed: {described}", actor=actor, project=project)
    events.publish_team_changed(project.team_id)
    return project


@transaction.atomic
def project_delete(*, project: Project, actor) -> None:
    """Delete a project that has no live deployments (their tombstones go with it)."""
    if Deployment.objects.live().filter(project=project).exists():
        raise ValidationError("Delete the project's deployments first.")
    team_id = project.team_id
    record_activity(
        action="project.deleted", message=f"Project “{project.name}” deleted", actor=actor, team=project.team
    )
    Deployment.objects.filter(project=project).delete()
    project.delete()
    events.publish_team_changed(team_id)


# ----------------------------------------------------------------------------- validation


def repository_problem(template: Template, repository: str) -> str | None:
    """Why ``repository`` will not do for a project of ``template``, or None when it will."""
    if error := repository_error(repository):
        return f"The repository {error}."
    spec = template.spec
    if repository or spec is None or spec.repository or not spec.uses_repository:
        return None
    return f"{template.name} runs your app's own code: give the Git repository it comes from."


def deployment_name_problems(
    project: Project, name: str, *, stage: str | None = None, exclude: Deployment | None = None
) -> list[str]:
    """What is wrong with ``name`` for a deployment of ``project`` (empty when it is fine)."""
    error = dns_label_error(name)
    if error:
        return [f"The name {error}."]
    if len(name) > 40:
        return ["The name must be at most 40 characters."]
    taken = Deployment.objects.live().filter(project=project, name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        return [f"The project already has a deployment called “{name}”."]
    try:
        hosts = hostnames_for(project, name, stage=stage)
    except ManifestError as problem:
        return [f"The name is too long for its public address: {problem}."]
    return platform_host_problems(hosts, exclude_deployment_id=exclude.pk if exclude is not None else None)


def hostnames_for(project: Project, name: str, *, stage: str | None = None) -> list[str]:
    """The public hosts a deployment of ``project`` called ``name`` would get."""
    from deployments.cluster.manifests import RenderTarget

    spec = project.template.current_version.spec
    target = RenderTarget(
        deployment_id=0,
        name=name,
        project=project.slug,
        namespace="preview",
        stage=stage or next(iter(spec.stages)),
        spec=spec,
        repository="",
        branch="",
        size=SIZES["small"],
    )
    return [host for _, _, host in public_hosts(target, cluster_settings())]


def branch_problems(branch: str) -> list[str]:
    """What is wrong with a Git branch name given for a development deployment."""
    if not branch or branch.startswith("-") or any(ch.isspace() for ch in branch):
        return ["Give a branch name (no spaces, not starting with “-”)."]
    return []


def custom_domain_problems(
    domains: Iterable[str], *, team: Team, exclude: Deployment | None = None
) -> tuple[list[str], list[str]]:
    """(the domains normalized, what is wrong with them): see `hosts.services.normalize_domains`."""
    return normalize_domains(domains, team_id=team.pk, exclude_deployment_id=exclude.pk if exclude else None)


def deployment_platform_hosts(deployment: Deployment) -> list[str]:
    """The public hosts the deployment's template gives it (not its custom domains)."""
    return [host for _, _, host in public_hosts(deployment.render_target(), cluster_settings())]


def env_override_problems(spec, overrides: Mapping[str, Mapping[str, str]]) -> list[str]:
    problems = []
    services = set(spec.service_ids())
    for service_id, values in overrides.items():
        if service_id not in services:
            problems.append(f"There is no component or add-on “{service_id}”.")
            continue
        for name in values:
            if not ENV_NAME.match(name):
                problems.append(
                    f"“{name}” is not a valid variable name (letters, digits and _, not starting with a digit)."
                )
    if problems:
        return problems
    return _expansion_problems(spec, overrides)


def _expansion_problems(spec, overrides: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Whether the overrides, with their references filled in, stay within the environment's bounds
    in every stage (a Secret holds at most 1 MiB; the bounds are well below it)."""
    sample_secrets = missing_secrets(spec, {})
    for stage in spec.stages:
        try:
            resolve_environment(
                spec, stage, generated=sample_secrets, overrides=overrides, present=set(spec.service_ids())
            )
        except EnvironmentTooLarge as error:
            return [f"Too large: {error}. References (${{NAME}}) may not multiply a value's size like this."]
    return []


# ----------------------------------------------------------------------------- deployments


def _operation(deployment: Deployment, kind: str, actor, *, target: str = "", message: str = "") -> Operation:
    return Operation.objects.create(
        deployment=deployment,
        kind=kind,
        target=target,
        requested_by=actor if actor is not None and actor.is_authenticated else None,
        generation=deployment.desired_generation,
        message=message,
    )


@transaction.atomic
def deployment_create(
    *,
    project: Project,
    name: str,
    stage: str,
    actor,
    branch: str = "main",
    size: str = "small",
    addons: Iterable[str] | None = None,
    env_overrides: Mapping[str, Mapping[str, str]] | None = None,
    custom_domains: Iterable[str] = (),
) -> Deployment:
    """Record a new deployment; the reconcile that creates it in the cluster runs on commit.

    Raises ValidationError (per field) for bad input; nothing is written then.
    """
    version = project.template.current_version
    spec = version.spec
    problems: dict[str, list[str]] = {}
    if stage not in spec.stages:
        problems["stage"] = [f"{project.template.name} offers {', '.join(spec.stages)}, not “{stage}”."]
    name_problems = deployment_name_problems(project, name, stage=stage if stage in spec.stages else None)
    if name_problems:
        problems["name"] = name_problems
    if size not in SIZES:
        problems["size"] = [f"Unknown size “{size}”."]
    toggleable = {a.id for a in spec.addons if a.toggleable}
    chosen = set(addons) if addons is not None else {a.id for a in spec.addons if a.toggleable and a.default_enabled}
    if chosen - toggleable:
        problems["addons"] = [f"“{a}” is not an optional add-on of this template." for a in sorted(chosen - toggleable)]
    if stage in spec.stages and spec.mode(stage) == "source":
        if project.has_nothing_to_clone:
            problems["branch"] = [
                f"{project.name} has no repository to clone: set one in the project's settings first."
            ]
        if branch_errors := branch_problems(branch):
            problems["branch"] = branch_errors
    domains, domain_problems = custom_domain_problems(custom_domains, team=project.team)
    if domain_problems:
        problems["custom_domains"] = domain_problems
    overrides = {k: dict(v) for k, v in (env_overrides or {}).items() if v}
    if env_problems := env_override_problems(spec, overrides):
        problems["env_overrides"] = env_problems
    if problems:
        raise ValidationError(problems)

    for _ in range(5):
        namespace = namespace_for(project.slug, name)
        if not Deployment.objects.filter(namespace=namespace).exists():
            break
    deployment = Deployment(
        project=project,
        name=name,
        stage=stage,
        branch=branch or "main",
        size=size,
        template_version=version,
        enabled_addons=sorted(chosen),
        env_overrides=overrides,
        custom_domains=domains,
        generated_secrets=missing_secrets(spec, {}),
        namespace=namespace,
        state=DeploymentState.CREATING,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    try:
        with transaction.atomic():
            deployment.save()
    except IntegrityError:
        raise ValidationError({"name": [f"The project already has a deployment called “{name}”."]}) from None
    claim_hosts(deployment=deployment, platform_hosts=deployment_platform_hosts(deployment))
    _operation(deployment, Operation.Kind.CREATE, actor)
    record_activity(
        action="deployment.created",
        message=f"{Stage(stage).label} deployment “{name}” created",
        actor=actor,
        deployment=deployment,
    )
    from deployments.builds.services import builds_first_request

    # Staging and production run images built from the repository: the first builds start now.
    builds_first_request(deployment=deployment, actor=actor)
    events.publish_deployment_changed(deployment)
    return deployment


@transaction.atomic
def deployment_update(
    *,
    deployment: Deployment,
    actor,
    name: str | None = None,
    branch: str | None = None,
    size: str | None = None,
    enabled: bool | None = None,
    env_overrides: Mapping[str, Mapping[str, str]] | None = None,
    custom_domains: Iterable[str] | None = None,
    addons: Iterable[str] | None = None,
    delete_storage_of: Iterable[str] = (),
) -> Deployment:
    """Change the desired state; the save hook reconciles on commit. Only given fields change.

    ``delete_storage_of``: add-ons being removed whose volumes should be deleted
    too (permanently); without it their storage is kept.
    """
    deployment = (
        Deployment.objects.select_for_update().select_related("project__team", "template_version").get(pk=deployment.pk)
    )
    if deployment.state in (DeploymentState.DELETING, DeploymentState.DELETED):
        raise ValidationError("This deployment is being deleted.")
    spec = deployment.spec
    problems: dict[str, list[str]] = {}
    changes: list[str] = []
    hosts_before = (deployment.name, list(deployment.custom_domains))
    if name is not None and name != deployment.name:
        if name_problems := deployment_name_problems(
            deployment.project, name, stage=deployment.stage, exclude=deployment
        ):
            problems["name"] = name_problems
        else:
            changes.append(f"renamed “{deployment.name}” to “{name}”")
            deployment.name = name
    if branch is not None and branch != deployment.branch:
        if branch_errors := branch_problems(branch):
            problems["branch"] = branch_errors
        else:
            builds = spec.mode(deployment.stage) == "build"
            when = "by the next build" if builds else "when the code volume is next created"
            changes.append(f"branch set to {branch} (used {when})")
            deployment.branch = branch
    if size is not None and size != deployment.size:
        if size not in SIZES:
            problems["size"] = [f"Unknown size “{size}”."]
        else:
            changes.append(f"size set to {size}")
            deployment.size = size
    if enabled is not None and enabled != deployment.enabled:
        changes.append("enabled" if enabled else "disabled (scaled to zero)")
        deployment.enabled = enabled
    if env_overrides is not None:
        overrides = {k: {n: str(v) for n, v in vals.items()} for k, vals in env_overrides.items() if vals}
        if env_problems := env_override_problems(spec, overrides):
            problems["env_overrides"] = env_problems
        elif overrides != deployment.env_overrides:
            changes.append("environment variables changed")
            deployment.env_overrides = overrides
    if custom_domains is not None:
        domains, domain_problems = custom_domain_problems(
            custom_domains, team=deployment.project.team, exclude=deployment
        )
        if domain_problems:
            problems["custom_domains"] = domain_problems
        elif domains != deployment.custom_domains:
            changes.append(f"custom domains set to {', '.join(domains) or 'none'}")
            deployment.custom_domains = domains
    removed: set[str] = set()
    if addons is not None:
        toggleable = {a.id for a in spec.addons if a.toggleable}
        chosen = set(addons)
        if chosen - toggleable:
            problems["addons"] = [
                f"“{a}” is not an optional add-on of this template." for a in sorted(chosen - toggleable)
            ]
        elif chosen != set(deployment.enabled_addons):
            removed = set(deployment.enabled_addons) - chosen
            added = chosen - set(deployment.enabled_addons)
            changes += [f"add-on {a} added" for a in sorted(added)]
            changes += [f"add-on {a} removed" for a in sorted(removed)]
            deployment.enabled_addons = sorted(chosen)
    if problems:
        raise ValidationError(problems)
    if not changes:
        return deployment
    deployment.save()
    if not deployment.enabled:
        sessions_close_for_deployment(deployment_id=deployment.pk, reason="the deployment was disabled")
    if (deployment.name, deployment.custom_domains) != hosts_before:
        claim_hosts(deployment=deployment, platform_hosts=deployment_platform_hosts(deployment))
    _operation(deployment, Operation.Kind.RECONCILE, actor, message="; ".join(changes).capitalize())
    for addon_id in sorted(removed & set(delete_storage_of)):
        storage_operation = _operation(deployment, Operation.Kind.DELETE_STORAGE, actor, target=addon_id)
        from deployments.tasks import delete_storage

        send_on_commit(delete_storage, storage_operation.pk)
    record_activity(
        action="deployment.updated",
        message="; ".join(changes).capitalize(),
        actor=actor,
        deployment=deployment,
        storage_deleted=sorted(removed & set(delete_storage_of)),
    )
    events.publish_deployment_changed(deployment)
    return deployment


@transaction.atomic
def deployment_admin_save(*, deployment: Deployment, fields: list[str], actor) -> None:
    """Save desired-state ``fields`` an operator edited on ``deployment`` in the admin
    (its form validated them); the save hook reconciles on commit.

    Fields the worker writes (state, generations, lease) are never written from
    the edited instance: the row is locked and its current generation and state
    taken, so a concurrent edit's bump is not lost and a deletion is respected.
    """
    deployment.desired_generation, deployment.state = (
        Deployment.objects.select_for_update().filter(pk=deployment.pk).values_list("desired_generation", "state").get()
    )
    before = deployment.desired_generation
    deployment.save(update_fields=fields)
    if "enabled" in fields and not deployment.enabled:
        sessions_close_for_deployment(deployment_id=deployment.pk, reason="the deployment was disabled")
    if {"name", "custom_domains"} & set(fields):
        claim_hosts(deployment=deployment, platform_hosts=deployment_platform_hosts(deployment))
    summary = "Changed in the admin: " + ", ".join(deployment._meta.get_field(name).verbose_name for name in fields)
    if deployment.desired_generation > before:
        _operation(deployment, Operation.Kind.RECONCILE, actor, message=summary)
    record_activity(
        action="deployment.admin_edited", message=summary, actor=actor, deployment=deployment, fields=fields
    )
    events.publish_deployment_changed(deployment)


@transaction.atomic
def deployment_restart(*, deployment: Deployment, actor, service_id: str | None = None) -> Operation:
    """Restart the whole deployment or one component/add-on.

    The restart is a new pod-template annotation (desired state), so the
    reconcile applies it and a later reconcile never undoes it. In development
    the code volume survives; in staging/production containers start fresh.
    """
    deployment = (
        Deployment.objects.select_for_update().select_related("project__team", "template_version").get(pk=deployment.pk)
    )
    if deployment.state in (DeploymentState.DELETING, DeploymentState.DELETED):
        raise ValidationError("This deployment is being deleted.")
    if service_id is not None and service_id not in deployment.spec.service_ids():
        raise ValidationError(f"There is no component or add-on “{service_id}”.")
    marks = dict(deployment.restart_marks)
    marks[service_id or "*"] = timezone.now().isoformat()
    deployment.restart_marks = marks
    deployment.state = DeploymentState.RESTARTING
    deployment.save()
    operation = _operation(deployment, Operation.Kind.RESTART, actor, target=service_id or "")
    what = service_id or "all services"
    record_activity(
        action="deployment.restarted",
        message=f"Restart of {what} requested",
        actor=actor,
        deployment=deployment,
        service=service_id,
    )
    events.publish_deployment_changed(deployment)
    return operation


@transaction.atomic
def deployment_delete(*, deployment: Deployment, actor) -> Operation:
    """Start deleting a deployment and all its storage, permanently. No shutdown needed first.

    Idempotent: asking again while it is being deleted returns the running operation.
    """
    claimed = Deployment.objects.filter(pk=deployment.pk, state__in=LIVE_STATES).update(
        state=DeploymentState.DELETING, updated_at=timezone.now()
    )
    deployment.refresh_from_db()
    if not claimed:
        existing = deployment.operations.filter(kind=Operation.Kind.DELETE).first()
        if deployment.state == DeploymentState.DELETED or existing is None:
            raise ValidationError("This deployment is already deleted.")
        if existing.status != Operation.Status.FAILED:
            return existing
        # The last attempt failed (e.g. the cluster was down too long): try again.
    operation = _operation(deployment, Operation.Kind.DELETE, actor)
    from deployments.builds.services import builds_cancel_all

    builds_cancel_all(deployment=deployment, reason="The deployment is being deleted")
    sessions_close_for_deployment(deployment_id=deployment.pk, reason="the deployment is being deleted")
    record_activity(
        action="deployment.delete_requested",
        message=f"Deletion of “{deployment.name}” and all its storage requested",
        actor=actor,
        deployment=deployment,
        namespace=deployment.namespace,
    )
    from deployments.tasks import delete_deployment

    send_on_commit(delete_deployment, operation.pk)
    events.publish_deployment_changed(deployment)
    return operation


@transaction.atomic
def secret_reveal(*, deployment: Deployment, service_id: str, name: str, actor) -> str:
    """The value of one environment variable, recorded in the audit log."""
    present = {c.id for c in deployment.spec.components} | {a.id for a in deployment.present_addons()}
    if service_id not in present:
        raise ValidationError(f"{service_id} is not part of this deployment.")
    environment = resolve_environment(
        deployment.spec,
        deployment.stage,
        generated=deployment.generated_secrets,
        overrides=deployment.env_overrides,
        present=present,
    )
    value = environment.get(service_id, {}).get(name)
    if value is None:
        raise ValidationError(f"{service_id} has no variable {name}.")
    record_activity(
        action="secret.revealed",
        message=f"{actor.get_username()} revealed {service_id}.{name}",
        actor=actor,
        deployment=deployment,
        service=service_id,
        variable=name,
    )
    return value


# ----------------------------------------------------------------------------- teams


@transaction.atomic
def member_set_role(*, team: Team, user, role: str, actor) -> Membership:
    """Add ``user`` to ``team`` with ``role``, or change their role. A team always keeps an admin."""
    if role not in Role.values:
        raise ValidationError(f"Unknown role “{role}”: choose viewer, developer or admin.")
    membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if membership and membership.role == Role.ADMIN and role != Role.ADMIN:
        _keep_an_admin(team, leaving=membership)
    if membership is None:
        membership = Membership.objects.create(team=team, user=user, role=role)
    else:
        membership.role = role
        membership.save(update_fields=["role"])
        sessions_close_for_role(user_id=user.pk, team_id=team.pk, role=role, team_name=team.name)
    record_activity(
        action="team.member_set", message=f"{user.get_username()} is {role} in {team.name}", actor=actor, team=team
    )
    return membership


@transaction.atomic
def member_remove(*, team: Team, username: str, actor) -> None:
    membership = Membership.objects.select_for_update().filter(team=team, user__username=username).first()
    if membership is None:
        raise ValidationError(f"{username} is not in {team.name}.")
    if membership.role == Role.ADMIN:
        _keep_an_admin(team, leaving=membership)
    membership.delete()
    sessions_close_for_role(user_id=membership.user_id, team_id=team.pk, role=None, team_name=team.name)
    record_activity(
        action="team.member_removed", message=f"{username} removed from {team.name}", actor=actor, team=team
    )


def _keep_an_admin(team: Team, *, leaving: Membership) -> None:
    admins = Membership.objects.filter(team=team, role=Role.ADMIN).exclude(pk=leaving.pk)
    if not admins.exists():
        raise ValidationError(f"{team.name} needs at least one admin: make someone else admin first.")


# ----------------------------------------------------------------------------- operators


@transaction.atomic
def deployment_reconcile(*, deployment: Deployment, actor) -> Operation:
    """Apply the deployment's desired state to the cluster again, now (e.g. to repair drift, or retry
    after a permanent failure, which this clears).

    Records a reconcile `Operation` and an audit row, and enqueues the task on
    commit. The desired state is unchanged, so this is safe to ask twice: a
    reconcile of an up-to-date deployment changes nothing in the cluster.
    """
    deployment = (
        Deployment.objects.select_for_update().select_related("project__team", "template_version").get(pk=deployment.pk)
    )
    if deployment.state in (DeploymentState.DELETING, DeploymentState.DELETED):
        raise ValidationError("This deployment is being deleted.")
    # Asking again is the way out of a permanent failure: the next failure records itself again.
    Deployment.objects.filter(pk=deployment.pk).update(failed_generation=None)
    operation = _operation(deployment, Operation.Kind.RECONCILE, actor, message="Reconcile requested")
    record_activity(
        action="deployment.reconcile_requested",
        message=f"Reconcile of “{deployment.name}” requested",
        actor=actor,
        deployment=deployment,
    )
    from deployments.tasks import reconcile_deployment

    send_on_commit(reconcile_deployment, deployment.pk)
    events.publish_deployment_changed(deployment)
    return operation
