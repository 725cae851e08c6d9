"""Claiming public hosts and custom domains for deployments.

`claim_hosts` is the one place a deployment's hosts are written: the create,
rename and domain services, and the admin's save, call it inside their own
transaction. The database's unique constraint on `HostClaim.host` decides
races; the checks before it only make the messages clear.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from deployments.hosts.models import HostClaim
from deployments.hosts.names import HostError, is_reserved, is_under_base_domain, normalize_host
from deployments.hosts.ownership import ownership_problem


def _taken(host: str, exclude_deployment_id: int | None) -> bool:
    claims = HostClaim.objects.filter(host=host)
    if exclude_deployment_id is not None:
        claims = claims.exclude(deployment_id=exclude_deployment_id)
    return claims.exists()


def platform_host_problems(hosts: Iterable[str], *, exclude_deployment_id: int | None = None) -> list[str]:
    """Why the template's public hosts for a deployment cannot be had (reserved or taken), or []."""
    problems = []
    for host in hosts:
        if is_reserved(host):
            problems.append(f"It would give the public address {host}, which is reserved for the platform itself.")
        elif _taken(host, exclude_deployment_id):
            problems.append(f"It would give the public address {host}, which another deployment already has.")
    return problems


def normalize_domains(
    domains: Iterable[str], *, team_id: int, exclude_deployment_id: int | None = None
) -> tuple[list[str], list[str]]:
    """(the domains normalized, what is wrong with them): the one check every entry point uses.

    Refuses invalid names, hosts under the base domain or reserved for the
    platform, duplicates, domains another deployment has, more than the caps
    allow and, when the DNS check is on, new domains the team has not proven.
    """
    problems: list[str] = []
    normalized: list[str] = []
    for raw in domains:
        if not raw.strip():
            continue
        try:
            domain = normalize_host(raw)
        except HostError as error:
            problems.append(f"“{raw.strip()[:100]}” {error}.")
            continue
        if domain in normalized:
            problems.append(f"“{domain}” is listed twice.")
        elif is_under_base_domain(domain):
            problems.append(f"“{domain}” is under {settings.BASE_DOMAIN}, which Diploi assigns itself.")
        elif is_reserved(domain):
            problems.append(f"“{domain}” is reserved for the platform itself.")
        else:
            normalized.append(domain)
    if len(normalized) > settings.CUSTOM_DOMAINS_PER_DEPLOYMENT:
        problems.append(
            f"A deployment can have at most {settings.CUSTOM_DOMAINS_PER_DEPLOYMENT} custom domains "
            f"({len(normalized)} given)."
        )
    if problems:
        return normalized, problems
    held = set(
        HostClaim.objects.filter(deployment_id=exclude_deployment_id).values_list("host", flat=True)
        if exclude_deployment_id
        else ()
    )
    for domain in normalized:
        if domain in held:
            continue
        if _taken(domain, exclude_deployment_id):
            problems.append(f"“{domain}” is already used by another deployment.")
        elif problem := ownership_problem(domain, team_id):
            problems.append(problem)
    if not problems and (problem := _team_cap_problem(team_id, normalized, exclude_deployment_id)):
        problems.append(problem)
    return normalized, problems


def _team_cap_problem(team_id: int, domains: list[str], exclude_deployment_id: int | None) -> str | None:
    others = HostClaim.objects.filter(team_id=team_id, kind=HostClaim.Kind.CUSTOM)
    if exclude_deployment_id is not None:
        others = others.exclude(deployment_id=exclude_deployment_id)
    total = others.count() + len(domains)
    if total > settings.CUSTOM_DOMAINS_PER_TEAM:
        return (
            f"Your team can have at most {settings.CUSTOM_DOMAINS_PER_TEAM} custom domains in all ({total} with these)."
        )
    return None


@transaction.atomic
def claim_hosts(*, deployment, platform_hosts: Iterable[str]) -> None:
    """Make the deployment's claims exactly its public hosts and custom domains. Idempotent.

    Call it inside the transaction that changes the deployment's name or
    domains. Raises ValidationError (on ``name`` or ``custom_domains``) when a
    host is reserved, taken (decided by the unique constraint, so a concurrent
    claim loses cleanly) or over the team's cap; the caller's transaction
    then rolls back with it.
    """
    from deployments.models import Team

    team_id = deployment.project.team_id
    wanted: dict[str, str] = {host: HostClaim.Kind.PLATFORM for host in platform_hosts}
    for domain in deployment.custom_domains:
        wanted.setdefault(domain, HostClaim.Kind.CUSTOM)
    field_of = {HostClaim.Kind.PLATFORM: "name", HostClaim.Kind.CUSTOM: "custom_domains"}
    problems: dict[str, list[str]] = {}
    for host, kind in wanted.items():
        if is_reserved(host):
            problems.setdefault(field_of[kind], []).append(f"{host} is reserved for the platform itself.")
    if problems:
        raise ValidationError(problems)
    # The team's row lock serializes its claims, so two saves cannot both pass the cap.
    Team.objects.select_for_update().filter(pk=team_id).values_list("pk", flat=True).first()
    HostClaim.objects.filter(deployment=deployment).exclude(host__in=wanted).delete()
    held = dict(HostClaim.objects.filter(deployment=deployment).values_list("host", "kind"))
    custom = [host for host, kind in wanted.items() if kind == HostClaim.Kind.CUSTOM]
    if problem := _team_cap_problem(team_id, custom, deployment.pk):
        raise ValidationError({"custom_domains": [problem]})
    for host, kind in wanted.items():
        if held.get(host) == kind:
            continue
        if host in held:
            HostClaim.objects.filter(deployment=deployment, host=host).update(kind=kind)
            continue
        try:
            with transaction.atomic():
                HostClaim.objects.create(host=host, kind=kind, deployment=deployment, team_id=team_id)
        except IntegrityError:
            problems.setdefault(field_of[kind], []).append(f"{host} is already used by another deployment.")
    if problems:
        raise ValidationError(problems)


def release_hosts(*, deployment) -> int:
    """Free every host of a deployment whose deletion the cluster confirmed. Idempotent."""
    deleted, _ = HostClaim.objects.filter(deployment=deployment).delete()
    return deleted
