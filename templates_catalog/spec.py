"""The parsed form of a template spec: immutable dataclasses, no Django, no I/O.

`templates_catalog.validation` turns a YAML file into a `TemplateSpec` (or a
list of errors); the spec is stored normalized as JSON on `TemplateVersion` and
rebuilt with `TemplateSpec.from_dict`. Everything that renders a deployment
(manifests, the SSH command, the create form) reads these objects. The file
format is documented in docs/templates.md.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

Stage = Literal["development", "staging", "production"]
STAGES: tuple[Stage, ...] = ("development", "staging", "production")
StageMode = Literal["source", "build"]
EnvType = Literal["string", "integer", "boolean", "secret"]
ENV_TYPES: tuple[EnvType, ...] = ("string", "integer", "boolean", "secret")


@dataclass(frozen=True)
class EnvVar:
    """One variable of a component's or add-on's environment.

    ``value`` is None only for a secret generated per deployment. String values
    may reference other variables of the same environment as ``${NAME}``.
    """

    name: str
    type: EnvType = "string"
    value: str | None = None
    stages: tuple[Stage, ...] = STAGES

    @property
    def generated(self) -> bool:
        return self.type == "secret" and self.value is None


@dataclass(frozen=True)
class EnvImport:
    """Variables taken from another component or add-on.

    ``pattern`` is a variable name or a glob (``POSTGRES_*``); ``rename`` is only
    allowed with an exact name.
    """

    source: str
    pattern: str
    rename: str | None = None

    @property
    def is_wildcard(self) -> bool:
        return any(ch in self.pattern for ch in "*?[")


@dataclass(frozen=True)
class Storage:
    """A persistent volume mounted at ``path``, present in ``stages``."""

    name: str
    path: str
    size: str  # a Kubernetes quantity, e.g. "5Gi"
    size_bytes: int
    stages: tuple[Stage, ...] = STAGES


@dataclass(frozen=True)
class HealthCheck:
    """HTTP GET on ``path`` at ``port``, or a TCP connect to ``port`` when ``path`` is None."""

    port: int
    path: str | None = None
    initial_delay_seconds: int = 5
    period_seconds: int = 10

    @property
    def kind(self) -> str:
        return "http" if self.path is not None else "tcp"


@dataclass(frozen=True)
class PublicEndpoint:
    """A container port published over HTTPS at a host built from ``host`` (a format)."""

    port: int
    host: str = "[component]-[deployment].[project].[base-domain]"


SecurityLevel = Literal["baseline", "restricted"]
# Pod Security Admission's baseline level allows adding no capability beyond these.
BASELINE_CAPABILITIES: tuple[str, ...] = (
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP",
    "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
)  # fmt: skip
# ... and restricted only this one.
RESTRICTED_CAPABILITIES: tuple[str, ...] = ("NET_BIND_SERVICE",)


@dataclass(frozen=True)
class Security:
    """How a service's containers run: every container drops all capabilities, never escalates and uses
    the runtime's default seccomp profile; this says which capabilities it gets back, which user it runs
    as (``run_as_user`` > 0 means runAsNonRoot) and the Pod Security level its image allows."""

    level: SecurityLevel = "baseline"
    run_as_user: int | None = None
    run_as_group: int | None = None
    fs_group: int | None = None
    capabilities: tuple[str, ...] | None = None  # None: baseline's set (a root entrypoint keeps working)

    @property
    def run_as_non_root(self) -> bool:
        return self.run_as_user is not None and self.run_as_user > 0

    def added_capabilities(self) -> tuple[str, ...]:
        if self.capabilities is not None:
            return self.capabilities
        return () if self.level == "restricted" else BASELINE_CAPABILITIES


@dataclass(frozen=True)
class StageOverride:
    """What a component does differently in one stage."""

    command: tuple[str, ...] | None = None
    env: tuple[EnvVar, ...] = ()
    replicas: int | None = None


@dataclass(frozen=True)
class Build:
    dockerfile: str = "Dockerfile"
    context: str = "."


@dataclass(frozen=True)
class Component:
    """One of the app's own processes."""

    id: str
    name: str
    image: str
    port: int
    code_path: str
    dev_command: tuple[str, ...]
    command: tuple[str, ...] | None = None  # staging/production; None = the image's own
    build: Build | None = None
    health: HealthCheck | None = None
    env: tuple[EnvVar, ...] = ()
    imports: tuple[EnvImport, ...] = ()
    storage: tuple[Storage, ...] = ()
    public: tuple[PublicEndpoint, ...] = ()
    stages: dict[Stage, StageOverride] = field(default_factory=dict)
    replicas: int = 1
    security: Security = field(default_factory=Security)
    # In source stages an init step puts OpenSSH's sftp-server into the container (SFTP and scp over SSH).
    provide_sftp_server: bool = False

    def command_for(self, stage: Stage, mode: StageMode) -> tuple[str, ...] | None:
        override = self.stages.get(stage)
        if override and override.command is not None:
            return override.command
        return self.dev_command if mode == "source" else self.command

    def env_for(self, stage: Stage) -> tuple[EnvVar, ...]:
        """Own variables in this stage, a stage override replacing a variable of the same name."""
        override = self.stages.get(stage)
        replaced = {var.name: var for var in (override.env if override else ())}
        merged = [replaced.pop(var.name, var) for var in self.env if stage in var.stages]
        return tuple(merged) + tuple(replaced.values())

    def replicas_for(self, stage: Stage) -> int:
        override = self.stages.get(stage)
        return override.replicas if override and override.replicas is not None else self.replicas

    def storage_for(self, stage: Stage) -> tuple[Storage, ...]:
        return tuple(volume for volume in self.storage if stage in volume.stages)


@dataclass(frozen=True)
class AddOn:
    """A service from an image (database, cache...). Never public."""

    id: str
    name: str
    image: str
    port: int
    data_path: str | None = None
    toggleable: bool = False
    default_enabled: bool = True
    command: tuple[str, ...] | None = None
    health: HealthCheck | None = None
    env: tuple[EnvVar, ...] = ()
    imports: tuple[EnvImport, ...] = ()
    storage: tuple[Storage, ...] = ()
    stages: tuple[Stage, ...] = STAGES
    security: Security = field(default_factory=Security)

    def env_for(self, stage: Stage) -> tuple[EnvVar, ...]:
        return tuple(var for var in self.env if stage in var.stages)

    def storage_for(self, stage: Stage) -> tuple[Storage, ...]:
        return tuple(volume for volume in self.storage if stage in volume.stages)


@dataclass(frozen=True)
class SshRule:
    """Which component can be entered over SSH, in which stages, as which user (a format)."""

    component: str
    stages: tuple[Stage, ...]
    user: str = "[component]-[deployment]"


@dataclass(frozen=True)
class LogSource:
    """A named entry of the Logs tab: the component's container output, a file in it (read with
    ``tail -F``), or what a command run in it prints (through exec)."""

    name: str
    component: str
    path: str | None = None  # a file in the container; None (and no command) = the container's stdout/stderr
    command: tuple[str, ...] = ()

    def exec_command(self, tail: int, *, follow: bool = True) -> tuple[str, ...]:
        """What to run in the container for this source (empty: read the container's own log): a file's
        last ``tail`` lines, then (``follow``) what is added to it."""
        if self.command:
            return self.command
        if self.path:
            return ("tail", "-n", str(tail), "-F", self.path) if follow else ("tail", "-n", str(tail), self.path)
        return ()


@dataclass(frozen=True)
class Action:
    """A command users run in one ready pod of ``component`` (the Run buttons). ``confirm``: the stages in
    which it asks first; ``timeout_seconds``: None takes ACTION_TIMEOUT_SECONDS."""

    name: str
    component: str
    command: tuple[str, ...]
    stages: tuple[Stage, ...] = STAGES
    confirm: tuple[Stage, ...] = ()
    timeout_seconds: int | None = None

    def asks_first(self, stage: str) -> bool:
        return stage in self.confirm


@dataclass(frozen=True)
class TemplateSpec:
    slug: str
    name: str
    description: str
    version: str
    stages: dict[Stage, StageMode]
    components: tuple[Component, ...]
    addons: tuple[AddOn, ...] = ()
    repository: str | None = None
    ssh: tuple[SshRule, ...] = ()
    logs: tuple[LogSource, ...] = ()
    actions: tuple[Action, ...] = ()
    status_url: str | None = None

    # --- lookups ---
    def component(self, component_id: str) -> Component:
        return next(c for c in self.components if c.id == component_id)

    def addon(self, addon_id: str) -> AddOn:
        return next(a for a in self.addons if a.id == addon_id)

    def service_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.components) + tuple(a.id for a in self.addons)

    def mode(self, stage: Stage) -> StageMode:
        return self.stages[stage]

    @property
    def status_target(self) -> tuple[str, int, str] | None:
        """(component id, port, path with its query) the status URL names; None without one."""
        if not self.status_url:
            return None
        parts = urlsplit(self.status_url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return parts.hostname or "", parts.port or 80, path

    @property
    def uses_repository(self) -> bool:
        """Whether deployments run the app's own code: a stage clones it, or a component is built from it."""
        return "source" in self.stages.values() or any(c.build is not None for c in self.components)

    def addons_for(self, stage: Stage, enabled: set[str] | None = None) -> tuple[AddOn, ...]:
        """Add-ons present in ``stage``: the fixed ones, plus toggleable ones that are enabled.

        ``enabled=None`` means each toggleable add-on's default.
        """
        chosen = []
        for addon in self.addons:
            if stage not in addon.stages:
                continue
            if addon.toggleable:
                on = addon.default_enabled if enabled is None else addon.id in enabled
                if not on:
                    continue
            chosen.append(addon)
        return tuple(chosen)

    def default_addons(self) -> set[str]:
        return {a.id for a in self.addons if not a.toggleable or a.default_enabled}

    def secret_names(self, service_id: str, stage: Stage) -> set[str]:
        """Names in a service's environment whose values are secrets: its own, and those it imports."""
        by_id = {service.id: service for service in (*self.components, *self.addons)}
        service = by_id[service_id]
        names = {var.name for var in service.env_for(stage) if var.type == "secret"}
        for entry in service.imports:
            source = by_id.get(entry.source)
            for var in source.env_for(stage) if source else ():
                if var.type == "secret" and fnmatch.fnmatchcase(var.name, entry.pattern):
                    names.add(entry.rename or var.name)
        return names

    def ssh_rule(self, component_id: str, stage: Stage) -> SshRule | None:
        return next((r for r in self.ssh if r.component == component_id and stage in r.stages), None)

    # --- JSON round trip ---
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TemplateSpec:
        return _template_from_dict(data)


def _in_stage_order(mapping: dict) -> dict:
    # JSON storage may not keep key order (PostgreSQL jsonb does not): restore development, staging, production.
    return {stage: mapping[stage] for stage in STAGES if stage in mapping}


def _t(values) -> tuple:
    return tuple(values) if values is not None else None


def _env(items) -> tuple[EnvVar, ...]:
    return tuple(EnvVar(i["name"], i["type"], i["value"], _t(i["stages"])) for i in items)


def _storage(items) -> tuple[Storage, ...]:
    return tuple(Storage(i["name"], i["path"], i["size"], i["size_bytes"], _t(i["stages"])) for i in items)


def _health(data) -> HealthCheck | None:
    return HealthCheck(**data) if data else None


def _security(data) -> Security:
    # Versions stored before the field existed have no "security": the defaults.
    if not data:
        return Security()
    return Security(**{**data, "capabilities": _t(data.get("capabilities"))})


def _imports(items) -> tuple[EnvImport, ...]:
    return tuple(EnvImport(i["source"], i["pattern"], i["rename"]) for i in items)


def _component_from_dict(d: dict[str, Any]) -> Component:
    return Component(
        id=d["id"],
        name=d["name"],
        image=d["image"],
        port=d["port"],
        code_path=d["code_path"],
        dev_command=_t(d["dev_command"]),
        command=_t(d["command"]),
        build=Build(**d["build"]) if d["build"] else None,
        health=_health(d["health"]),
        env=_env(d["env"]),
        imports=_imports(d["imports"]),
        storage=_storage(d["storage"]),
        public=tuple(PublicEndpoint(**p) for p in d["public"]),
        stages={
            stage: StageOverride(_t(o["command"]), _env(o["env"]), o["replicas"])
            for stage, o in _in_stage_order(d["stages"]).items()
        },
        replicas=d["replicas"],
        security=_security(d.get("security")),
        provide_sftp_server=d.get("provide_sftp_server", False),
    )


def _addon_from_dict(d: dict[str, Any]) -> AddOn:
    return AddOn(
        id=d["id"],
        name=d["name"],
        image=d["image"],
        port=d["port"],
        data_path=d["data_path"],
        toggleable=d["toggleable"],
        default_enabled=d["default_enabled"],
        command=_t(d["command"]),
        health=_health(d["health"]),
        env=_env(d["env"]),
        imports=_imports(d["imports"]),
        storage=_storage(d["storage"]),
        stages=_t(d["stages"]),
        security=_security(d.get("security")),
    )


def _action_from_dict(a: dict[str, Any]) -> Action:
    # Specs stored before `confirm` and `timeout_seconds` existed have neither key.
    return Action(
        a["name"],
        a["component"],
        _t(a["command"]),
        _t(a["stages"]),
        confirm=_t(a.get("confirm") or ()),
        timeout_seconds=a.get("timeout_seconds"),
    )


def _template_from_dict(d: dict[str, Any]) -> TemplateSpec:
    return TemplateSpec(
        slug=d["slug"],
        name=d["name"],
        description=d["description"],
        version=d["version"],
        stages=_in_stage_order(d["stages"]),
        components=tuple(_component_from_dict(c) for c in d["components"]),
        addons=tuple(_addon_from_dict(a) for a in d["addons"]),
        repository=d["repository"],
        ssh=tuple(SshRule(r["component"], _t(r["stages"]), r["user"]) for r in d["ssh"]),
        logs=tuple(LogSource(e["name"], e["component"], e.get("path"), _t(e.get("command") or ())) for e in d["logs"]),
        actions=tuple(_action_from_dict(a) for a in d["actions"]),
        status_url=d["status_url"],
    )
