"""What the catalog pages and the admin show of a spec: pure functions, no queries.

Turns a `TemplateSpec` into plain rows (per stage, per volume, per SSH rule...)
so templates stay free of logic and the detail page and the admin agree.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from templates_catalog.spec import AddOn, Component, EnvVar, Stage, TemplateSpec

MODE_HELP = {
    "source": "Runs the source: your code is cloned from Git onto a persistent volume and the dev command "
    "runs it with hot reload. Changes survive restarts.",
    "build": "Runs a build: the image built from your repository. Containers start fresh on every restart; "
    "only volumes keep data.",
}
_SIZE_UNITS = {
    **{"Ki": "KiB", "Mi": "MiB", "Gi": "GiB", "Ti": "TiB"},
    **{"k": "kB", "K": "kB", "M": "MB", "G": "GB", "T": "TB"},
}


def argv_text(argv: tuple[str, ...] | None) -> str:
    """A command as one shell-quoted line (for reading, never for running)."""
    return shlex.join(argv) if argv else ""


def human_size(size: str) -> str:
    """``5Gi`` → ``5 GiB``, ``500M`` → ``500 MB``, ``1024`` → ``1024 bytes``."""
    for suffix in ("Ki", "Mi", "Gi", "Ti"):
        if size.endswith(suffix):
            return f"{size[:-2]} {_SIZE_UNITS[suffix]}"
    if size and size[-1] in _SIZE_UNITS:
        return f"{size[:-1]} {_SIZE_UNITS[size[-1]]}"
    return f"{size} bytes"


def example_name(fmt: str, *, component: str, base_domain: str = "") -> str:
    """A host or user format with the known parts filled in: ``app-<deployment>.example.com``."""
    return (
        fmt.replace("[component]", component)
        .replace("[base-domain]", base_domain or "<base-domain>")
        .replace("[deployment]", "<deployment>")
        .replace("[project]", "<project>")
    )


@dataclass(frozen=True)
class RunRow:
    service: Component | AddOn
    kind: str  # "component" or "add-on"
    command: str  # empty: the image's own command
    replicas: int
    volumes: tuple[str, ...]


@dataclass(frozen=True)
class StageRow:
    stage: Stage
    mode: str
    help: str
    runs: tuple[RunRow, ...]


@dataclass(frozen=True)
class VolumeRow:
    service: Component | AddOn
    name: str
    path: str
    size: str
    stages: tuple[Stage, ...]


@dataclass(frozen=True)
class EnvRow:
    name: str
    type: str
    shown: str
    stages: tuple[Stage, ...]
    all_stages: bool


@dataclass(frozen=True)
class SshRow:
    component: Component
    stages: tuple[Stage, ...]
    user: str
    example: str


@dataclass(frozen=True)
class PublicRow:
    port: int
    host: str  # the format
    example: str


@dataclass(frozen=True)
class ServiceRow:
    service: Component | AddOn
    kind: str  # "component" or "add-on"
    health: str
    dev_command: str
    command: str
    public: tuple[PublicRow, ...]
    imports: tuple[str, ...]
    env: tuple[EnvRow, ...]


def health_text(service: Component | AddOn) -> str:
    check = service.health
    if check is None:
        return ""
    if check.kind == "http":
        return f"HTTP GET {check.path} on port {check.port}"
    return f"TCP connect to port {check.port}"


def service_rows(spec: TemplateSpec, *, base_domain: str = "") -> list[ServiceRow]:
    """Components then add-ons, with commands, health, public hosts, imports and variables."""
    rows = []
    for service in (*spec.components, *spec.addons):
        is_component = isinstance(service, Component)
        public = ()
        if is_component:
            public = tuple(
                PublicRow(e.port, e.host, example_name(e.host, component=service.id, base_domain=base_domain))
                for e in service.public
            )
        imports = tuple(
            f"{entry.source}.{entry.pattern}" + (f" as {entry.rename}" if entry.rename else "")
            for entry in service.imports
        )
        rows.append(
            ServiceRow(
                service=service,
                kind="component" if is_component else "add-on",
                health=health_text(service),
                dev_command=argv_text(service.dev_command) if is_component else "",
                command=argv_text(service.command),
                public=public,
                imports=imports,
                env=tuple(env_rows(spec, service)),
            )
        )
    return rows


def stage_rows(spec: TemplateSpec) -> list[StageRow]:
    """Per offered stage: its mode, and what runs (command, replicas, volumes) with default add-ons."""
    rows = []
    for stage, mode in spec.stages.items():
        runs = []
        for component in spec.components:
            replicas = component.replicas_for(stage)
            if replicas == 0:
                continue
            runs.append(
                RunRow(
                    service=component,
                    kind="component",
                    command=argv_text(component.command_for(stage, mode)),
                    replicas=replicas,
                    volumes=tuple(f"{v.name} ({human_size(v.size)})" for v in component.storage_for(stage)),
                )
            )
        for addon in spec.addons:
            if stage in addon.stages:
                runs.append(
                    RunRow(
                        service=addon,
                        kind="add-on",
                        command=argv_text(addon.command),
                        replicas=1,
                        volumes=tuple(f"{v.name} ({human_size(v.size)})" for v in addon.storage_for(stage)),
                    )
                )
        rows.append(StageRow(stage=stage, mode=mode, help=MODE_HELP[mode], runs=tuple(runs)))
    return rows


def volume_rows(spec: TemplateSpec) -> list[VolumeRow]:
    services: list[Component | AddOn] = [*spec.components, *spec.addons]
    return [
        VolumeRow(service=s, name=v.name, path=v.path, size=human_size(v.size), stages=v.stages)
        for s in services
        for v in s.storage
    ]


def env_rows(spec: TemplateSpec, service: Component | AddOn) -> list[EnvRow]:
    """A service's own variables (stage overrides included), secrets never shown."""
    variables: list[EnvVar] = list(service.env)
    if isinstance(service, Component):
        for override in service.stages.values():
            variables.extend(override.env)
    rows = []
    for var in variables:
        if var.generated:
            shown = "generated per deployment"
        elif var.type == "secret":
            shown = "set by the template (hidden)"
        else:
            shown = var.value
        rows.append(
            EnvRow(
                name=var.name,
                type=var.type,
                shown=shown,
                stages=var.stages,
                all_stages=set(var.stages) >= set(spec.stages),
            )
        )
    return rows


def ssh_rows(spec: TemplateSpec, *, ssh_host: str = "", ssh_port: int = 22) -> list[SshRow]:
    """Per SSH rule: the component, its stages, and the user name Diploi gives it
    (``component.<deployment>.<project>``, as `deployments.ssh.naming` makes it)."""
    rows = []
    for rule in spec.ssh:
        user = f"{rule.component}.<deployment>.<project>"
        port = f" -p {ssh_port}" if ssh_port != 22 else ""
        example = f"ssh {user}@{ssh_host}{port}" if ssh_host else ""
        rows.append(SshRow(component=spec.component(rule.component), stages=rule.stages, user=user, example=example))
    return rows


def service_name(spec: TemplateSpec, service_id: str) -> str:
    for service in (*spec.components, *spec.addons):
        if service.id == service_id:
            return service.name
    return service_id
