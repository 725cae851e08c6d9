"""Read-side queries and page contexts: the same context feeds a page and its live fragments.

Each function runs a fixed number of queries, whatever the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, OuterRef, Q, Subquery, When
from django.http import Http404
from django.utils import timezone

from deployments import charts, cpu
from deployments.actions import selectors as action_selectors
from deployments.builds.models import Build
from deployments.cluster.connection import cluster_settings
from deployments.cluster.environment import resolve_environment, secret_variables
from deployments.cluster.manifests import ManifestError, public_hosts
from deployments.cluster.status import NODE_TITLES, NODES, apply_builds
from deployments.models import (
    ActivityEntry,
    Deployment,
    DeploymentState,
    Health,
    Membership,
    Operation,
    Project,
    Role,
    Team,
)
from deployments.ssh import selectors as ssh_selectors
from deployments.ssh.naming import replica_of, ssh_user_for
from deployments.statuses import builds_nodes
from diploi_site.baked import BakedQuery


def projects_of_team(team: Team):
    live = ~Q(deployments__state=DeploymentState.DELETED)
    return (
        Project.objects.filter(team=team)
        .select_related("template")
        .annotate(
            live_count=Count("deployments", filter=live),
            red_count=Count("deployments", filter=live & Q(deployments__status__health=Health.RED)),
            yellow_count=Count("deployments", filter=live & Q(deployments__status__health=Health.YELLOW)),
        )
        .order_by("name", "pk")
    )


PROJECTS_PER_PAGE = 60
MEMBERS_PER_PAGE = 100


def team_projects_page(team: Team, page: str | int | None) -> Page:
    """One page of the team's projects (a missing or bad page number means the first or last)."""
    return Paginator(projects_of_team(team), PROJECTS_PER_PAGE).get_page(page)


def team_page_outline(team: Team, page: str | int | None) -> tuple:
    """What decides the projects page's shape: the count, the page's number, its rows' ids and names."""
    rows = Project.objects.filter(team=team).order_by("name", "pk").values_list("id", "name")
    found = Paginator(rows, PROJECTS_PER_PAGE).get_page(page)
    return found.paginator.count, found.number, tuple(found.object_list)


def team_outline_of(page: Page) -> tuple:
    return page.paginator.count, page.number, tuple((p.pk, p.name) for p in page.object_list)


def team_project_row(team: Team, project_id: int) -> Project | None:
    """One card of the projects page, read as the page reads it."""
    return projects_of_team(team).filter(pk=project_id).first()


def team_members_page(team: Team, page: str | int | None) -> Page:
    members = Membership.objects.filter(team=team).select_related("user").order_by("user__username")
    return Paginator(members, MEMBERS_PER_PAGE).get_page(page)


DEPLOYMENTS_PER_PAGE = 100


_latest_activity = ActivityEntry.objects.filter(deployment=OuterRef("pk")).order_by("-created_at")


def _live_deployments_of(project: Project):
    return Deployment.objects.live().filter(project=project).order_by("name")


def deployments_of_project(project: Project):
    """Live deployments with what the project page shows of them (not their stored trees): one query."""
    return (
        _live_deployments_of(project)
        .select_related("status")
        .only(
            "id",
            "project_id",
            "name",
            "stage",
            "state",
            "enabled",
            "status__id",
            "status__health",
            "status__reason",
            "status__cpu_millicores",
        )
        # A correlated subquery (on the (deployment, -created_at) index) runs only for
        # the rows a page shows, where a GROUP BY would aggregate every deployment's log.
        .annotate(last_activity=Subquery(_latest_activity.values("created_at")[:1]))
    )


def project_deployments_page(project: Project, page: str | int | None) -> Page:
    """One page of the project's deployments (a missing or bad page number means the first or last)."""
    return Paginator(deployments_of_project(project), DEPLOYMENTS_PER_PAGE).get_page(page)


def project_page_outline(project: Project, page: str | int | None) -> tuple:
    """What decides a project page's shape: the number of deployments, the page's number,
    and its rows' ids and names, in order. Two small queries, whatever the number of rows."""
    found = Paginator(_live_deployments_of(project).values_list("id", "name"), DEPLOYMENTS_PER_PAGE).get_page(page)
    return found.paginator.count, found.number, tuple(found.object_list)


def outline_of(page: Page) -> tuple:
    """The outline (as `project_page_outline` reads it) of a page already fetched."""
    return page.paginator.count, page.number, tuple((d.pk, d.name) for d in page.object_list)


def project_deployment_row(project: Project, deployment_id: int) -> Deployment | None:
    """One row of the project page, read as the page reads it."""
    return deployments_of_project(project).filter(pk=deployment_id).first()


@dataclass(frozen=True)
class Permissions:
    role: str
    edit: bool
    delete: bool
    manage: bool

    @classmethod
    def of(cls, membership: Membership) -> Permissions:
        return cls(
            role=membership.role,
            edit=membership.allows(Role.DEVELOPER),
            delete=membership.allows(Role.ADMIN),
            manage=membership.allows(Role.ADMIN),
        )


def _placeholder_tree(deployment: Deployment) -> dict:
    reason = "Waiting for the first report from the cluster"
    if deployment.state == DeploymentState.DELETING:
        reason = "Being deleted"
    return {
        "health": Health.UNKNOWN if deployment.applied_generation else Health.PROGRESS,
        "reason": reason if deployment.applied_generation else "Creating: applying the deployment to the cluster",
        "since": deployment.created_at.isoformat(),
        "nodes": {name: {"health": "unknown", "reason": "Not observed yet", "items": []} for name in NODES},
        "tls": {},
    }


def status_tree(deployment: Deployment) -> dict:
    """The stored tree (the watcher's, its Builds node kept current by the build services). Before the
    first one, a placeholder with the Builds node read from the rows."""
    status = getattr(deployment, "status", None)
    if status is not None and status.tree:
        tree = status.tree
    else:
        deleting = deployment.state == DeploymentState.DELETING
        tree = apply_builds(_placeholder_tree(deployment), builds_nodes([deployment])[deployment.pk], deleting=deleting)
    if deployment.state == DeploymentState.DELETING and not str(tree.get("reason", "")).startswith("Deleting"):
        # Until the watcher has seen the deletion: progress, never an alarm.
        tree = {**tree, "health": Health.PROGRESS, "reason": "Deleting: asking the cluster to remove the namespace"}
    return tree


def _builds_possible(deployment: Deployment) -> bool:
    from deployments.builds.services import buildable_components

    return bool(buildable_components(deployment))


def build_page(deployment: Deployment, build_id: int) -> Build:
    """One build of ``deployment`` (404 for another deployment's)."""
    build = Build.objects.filter(deployment=deployment, pk=build_id).first()
    if build is None:
        raise Http404("No such build.")
    return build


def tree_nodes(tree: dict, connect: dict[str, str] | None = None) -> list[dict]:
    """The tree's nodes in order; ``connect``: pod name -> its SSH command, added to those pods' items."""
    nodes = []
    for name in NODES:
        node = {
            "name": name,
            "title": NODE_TITLES[name],
            **tree["nodes"].get(name, {"health": "unknown", "reason": "", "items": []}),
        }
        if name == "containers" and connect:
            node["items"] = [{**item, "connect": connect.get(item.get("key", ""))} for item in node.get("items", [])]
        nodes.append(node)
    return nodes


def size_levels(deployment: Deployment) -> dict[str, float | None]:
    """The size's CPU (millicores) and memory (bytes) requests and limits, summed over the pods the
    deployment runs: what its charts are drawn against. None while disabled (nothing runs)."""
    pods = deployment.expected_pods() if deployment.enabled else 0
    size = deployment.size_spec
    if not pods:
        return dict.fromkeys(("cpu_request", "cpu_limit", "memory_request", "memory_limit"))
    return {
        "cpu_request": cpu.parse_cpu(size.cpu_request) * pods,
        "cpu_limit": cpu.parse_cpu(size.cpu_limit) * pods,
        "memory_request": cpu.parse_memory(size.memory_request) * pods,
        "memory_limit": cpu.parse_memory(size.memory_limit) * pods,
    }


def endpoints(deployment: Deployment, tree: dict) -> list[dict]:
    tls = tree.get("tls") or {}
    # No certificate API in the cluster (no cert-manager): nothing will ever issue one, so not "pending".
    unmanaged = tree.get("tls_managed") is False
    pending = "is not managed by this cluster" if unmanaged else "pending"
    found = []
    try:
        hosts = public_hosts(deployment.render_target(), cluster_settings())
    except ManifestError:
        hosts = []
    for component, _port, host in hosts:
        found.append(
            {
                "label": component.name,
                "url": f"https://{host}",
                "host": host,
                "tls": tls.get(host, pending),
                "custom": False,
                "off": not deployment.enabled,
            }
        )
    for domain in deployment.custom_domains:
        found.append(
            {
                "label": "Custom domain",
                "url": f"https://{domain}",
                "host": domain,
                "tls": tls.get(domain, pending),
                "custom": True,
                "off": not deployment.enabled,
            }
        )
    return found


def ssh_command(user: str) -> str:
    """The command a user pastes: ``ssh <user>@<SSH_HOST>``, with ``-p SSH_PORT`` unless it is 22."""
    port = f" -p {settings.SSH_PORT}" if settings.SSH_PORT != 22 else ""
    return f"ssh {user}@{settings.SSH_HOST}{port}"


def ssh_commands(deployment: Deployment) -> list[dict]:
    """The `ssh` command for each component the template lets users enter in this stage.

    The user name is ``component.deployment.project`` (`deployments.ssh.naming`): one
    name, one deployment and component, across every team and project.
    """
    commands = []
    host = settings.SSH_HOST if settings.SSH_PORT == 22 else f"{settings.SSH_HOST}:{settings.SSH_PORT}"
    for rule in deployment.spec.ssh:
        if deployment.stage not in rule.stages:
            continue
        component = deployment.spec.component(rule.component)
        user = ssh_user_for(component=component.id, deployment=deployment.name, project=deployment.project.slug)
        commands.append(
            {
                "component": component,
                "user": user,
                "command": ssh_command(user),
                "vscode": f"vscode://vscode-remote/ssh-remote+{user}@{host}{component.code_path}",
            }
        )
    return commands


def pod_connect_commands(deployment: Deployment, ssh: list[dict], tree: dict) -> dict[str, str]:
    """For each observed pod of a component SSH may enter: the command that enters that very pod."""
    users = {entry["component"].id: entry["user"] for entry in ssh}
    found = {}
    for item in (tree.get("nodes") or {}).get("containers", {}).get("items", []):
        user = users.get(item.get("service", ""))
        replica = replica_of(item.get("key", ""))
        if user and replica:
            found[item["key"]] = ssh_command(f"{replica}.{user}")
    return found


def header_context(deployment: Deployment, membership: Membership) -> dict:
    """What a deployment page's header (``_deployment_header.html``: the health, the operations under
    way, the last failure) shows: the part of `deployment_context` a live page gets first."""
    active, recent_failure = _active_operations_and_last_failure(deployment)
    return {
        "deployment": deployment,
        "project": deployment.project,
        "tree": status_tree(deployment),
        "can": Permissions.of(membership),
        "active_operations": active,
        "recent_failure": recent_failure,
    }


HEADER_ACTIVE_OPERATIONS = 5


def _header_operations_queryset(deployment_id: int):
    last_failure = (
        Operation.objects.filter(deployment_id=deployment_id, status=Operation.Status.FAILED, finished_at__isnull=False)
        .order_by("-finished_at")
        .values("pk")[:1]
    )
    return (
        Operation.objects.filter(
            Q(status__in=(Operation.Status.PENDING, Operation.Status.RUNNING)) | Q(pk=Subquery(last_failure)),
            deployment_id=deployment_id,
        )
        .select_related("requested_by")
        .order_by(Case(When(status=Operation.Status.FAILED, then=0), default=1), "-requested_at", "-pk")[
            : HEADER_ACTIVE_OPERATIONS + 1
        ]
    )


_header_operations = BakedQuery(_header_operations_queryset)  # on every live change's path


def _active_operations_and_last_failure(deployment: Deployment) -> tuple[list[Operation], Operation | None]:
    """The newest HEADER_ACTIVE_OPERATIONS operations under way, and the last one that failed, in one
    query (the header is on every live change's path): the failure sorts first, then the others."""
    rows = _header_operations(deployment.pk)
    for row in rows:
        row.deployment = deployment
    failure = rows[0] if rows and rows[0].status == Operation.Status.FAILED else None
    active = [row for row in rows if row.status != Operation.Status.FAILED][:HEADER_ACTIVE_OPERATIONS]
    return active, failure


def deployment_context(deployment: Deployment, membership: Membership, *, tab: str, header: dict | None = None) -> dict:
    """Everything a deployment page (and its live fragments) shows. ``header``: its `header_context`,
    when the caller read it already (for the same deployment row and membership)."""
    context = dict(header or header_context(deployment, membership))
    tree = context["tree"]
    ssh = ssh_commands(deployment)
    offered = action_selectors.offered_actions(deployment) if tab in ("overview", "status") else []
    context.update(
        spec=deployment.spec,
        tab=tab,
        nodes=tree_nodes(tree, pod_connect_commands(deployment, ssh, tree)),
        builds_possible=_builds_possible(deployment),
        actions_by_component=action_selectors.by_component(offered),
    )
    if tab == "overview":
        now = timezone.now()
        cpu_points = cpu.cpu_series(deployment.pk, now=now)
        levels = size_levels(deployment)
        status = getattr(deployment, "status", None)
        context.update(
            endpoints=endpoints(deployment, tree),
            ssh=ssh,
            ssh_sessions_live=ssh_selectors.live_session_count(deployment.pk),
            charts=[
                charts.cpu_chart(window, points, now, request=levels["cpu_request"], limit=levels["cpu_limit"])
                for window, points in cpu_points.items()
            ],
            memory_charts=[
                charts.memory_chart(window, points, now, request=levels["memory_request"], limit=levels["memory_limit"])
                for window, points in cpu_points.items()
            ],
            actions=offered,
            memory_now=getattr(status, "memory_bytes", None) if deployment.enabled else None,
            memory_limit=levels["memory_limit"],
            # Disabled: nothing runs, so no figure (the last sample would look live).
            cpu_now=getattr(getattr(deployment, "status", None), "cpu_millicores", None)
            if deployment.enabled
            else None,
        )
    elif tab == "status":
        context["operations"] = list(deployment.operations.select_related("requested_by")[:20])
        # Every node open, healthy ones too: on the page and in its live fragments alike, or the
        # socket's first push would close what the page had just shown open.
        context["detailed"] = True
    elif tab == "activity":
        context["activity"] = list(
            ActivityEntry.objects.filter(deployment=deployment)
            .select_related("actor")
            .order_by("-created_at", "-pk")[:100]
        )
        context["operations"] = list(deployment.operations.select_related("requested_by")[:50])
        context["ssh_sessions"] = ssh_selectors.deployment_sessions(deployment.pk)
        context["action_runs"] = action_selectors.deployment_runs(deployment)
    return context


def _secret_names(deployment: Deployment, present: set[str]) -> dict[str, set[str]]:
    return secret_variables(deployment.spec, deployment.stage, overrides=deployment.env_overrides, present=present)


def environment_rows(deployment: Deployment) -> list[dict]:
    """Every present service's variables for the Options tab; secret values are left out (revealed on request).

    Secret means declared secret, imported from a secret, or referencing one (``${POSTGRES_PASSWORD}``).
    Raises `EnvironmentError` when the stored overrides cannot be resolved (the page says so).
    """
    spec = deployment.spec
    services = [*spec.components, *deployment.present_addons()]
    present = {service.id for service in services}
    resolved = resolve_environment(
        spec,
        deployment.stage,
        generated=deployment.generated_secrets,
        overrides=deployment.env_overrides,
        present=present,
    )
    secrets = _secret_names(deployment, present)
    rows = []
    for service in services:
        own = {var.name for var in service.env_for(deployment.stage)}
        overrides = deployment.env_overrides.get(service.id, {})
        secret = secrets.get(service.id, set())
        variables = [
            {
                "name": name,
                "value": None if name in secret else value,
                "secret": name in secret,
                "source": "override" if name in overrides else ("template" if name in own else "imported"),
            }
            for name, value in sorted(resolved.get(service.id, {}).items())
        ]
        rows.append({"service": service, "variables": variables})
    return rows


def secret_overrides(deployment: Deployment) -> dict[str, dict[str, str]]:
    """The deployment's overrides whose values are secret (masked in forms): overrides of declared
    secrets, and any override that references a secret."""
    known = set(deployment.spec.service_ids())
    secrets = _secret_names(deployment, known)
    found: dict[str, dict[str, str]] = {}
    for service_id, values in deployment.env_overrides.items():
        if service_id not in known:
            continue
        for name, value in values.items():
            if name in secrets.get(service_id, set()):
                found.setdefault(service_id, {})[name] = value
    return found


def deployment_volumes(deployment: Deployment, tree: dict | None = None) -> list[dict]:
    """The volumes deleting ``deployment`` destroys: those the cluster reported, else those its template declares."""
    tree = tree or status_tree(deployment)
    observed = (tree.get("nodes") or {}).get("storage", {}).get("items", [])
    if observed:
        return [
            {"name": item["key"], "size": item.get("size", ""), "service": item.get("service", "")} for item in observed
        ]
    return [
        {"name": f"{volume.name}-{service.id}-0", "size": volume.size, "service": service.id}
        for service in [*deployment.spec.components, *deployment.present_addons()]
        for volume in service.storage_for(deployment.stage)
    ]
