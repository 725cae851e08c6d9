"""Strict validation of template spec files: YAML text in, `TemplateSpec` (or every problem) out.

`parse_template` never stops at the first problem: it checks the whole file and
raises one `SpecError` listing every `SpecProblem`, each naming the file, the
field path (``components[1].storage.code.size``), the line when known, and
what is wrong. Wrong YAML types anywhere (a list where a mapping belongs) are
problems, never crashes. Pure: no Django, no I/O. The format is documented in
docs/templates.md; keep the two in step.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fnmatch import fnmatchcase
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

import yaml

from templates_catalog.spec import (
    BASELINE_CAPABILITIES,
    RESTRICTED_CAPABILITIES,
    STAGES,
    Action,
    AddOn,
    Build,
    Component,
    EnvImport,
    EnvVar,
    HealthCheck,
    LogSource,
    PublicEndpoint,
    Security,
    SshRule,
    StageOverride,
    Storage,
    TemplateSpec,
)

# --------------------------------------------------------------------------- limits and patterns

HEADLESS_SUFFIX = "-headless"  # what names a StatefulSet's headless Service (deployments.cluster.manifests)
ID_MAX = 30  # `<id>-<something>` names must still fit in a 63-character DNS label
STORAGE_NAME_MAX = 30
SLUG_MAX = 63
VERSION_MAX = 64  # TemplateVersion.version
NAME_MAX = 200
REPLICAS_MAX = 20
PROBE_SECONDS_MAX = 3600
ACTION_TIMEOUT_MAX = 86400  # a day: longer work is a job, not an action
ID_NUMBER_MAX = 2147483647  # user and group ids
DEFAULT_HOST = "[component]-[deployment].[project].[base-domain]"
DEFAULT_SSH_USER = "[component]-[deployment]"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_PATTERN = re.compile(r"^[A-Za-z0-9_*?]+$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?$")
_QUANTITY_FACTORS = {
    None: 1,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
}
_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_PLACEHOLDER = re.compile(r"\[([^\]]*)\]")
_HOST_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SSH_USER = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
_HOSTNAME_PART = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_HOSTNAME_PART}(\.{_HOSTNAME_PART})*$")
_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[A-Za-z0-9._~/-]+)$")
_NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    r"^(?:(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(?::[0-9]+)?)/)?"
    rf"(?P<path>{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)

# Sample values used to check that a host or user format yields valid names.
_SAMPLE_PLACEHOLDERS = {"component": "web", "deployment": "main", "project": "shop", "base-domain": "example.com"}
HOST_PLACEHOLDERS = ("component", "deployment", "project", "base-domain")
SSH_PLACEHOLDERS = ("component", "deployment", "project")

TEMPLATE_KEYS = ("slug", "name", "description", "version", "repository", "status_url", "stages", "components",
                 "addons", "ssh", "logs", "actions")  # fmt: skip
COMPONENT_KEYS = ("id", "name", "image", "build", "port", "code_path", "dev_command", "command", "health", "env",
                  "imports", "storage", "public", "stages", "replicas", "security",
                  "provide_sftp_server")  # fmt: skip
ADDON_KEYS = ("id", "name", "image", "port", "data_path", "toggleable", "default_enabled", "command", "health", "env",
              "imports", "storage", "stages", "security")  # fmt: skip


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a spec file: where (file, field path, line) and what."""

    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SpecError(Exception):
    """A spec file is invalid; ``problems`` lists everything wrong with it."""

    def __init__(self, problems: Iterable[SpecProblem]):
        self.problems: list[SpecProblem] = list(problems)
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''}:\n{format_problems(self.problems)}")


def format_problems(problems: Iterable[SpecProblem]) -> str:
    """One problem per line, as shown to operators (command output, admin, `Template.last_error`)."""
    return "\n".join(str(problem) for problem in problems)


# --------------------------------------------------------------------------- public helpers


def parse_quantity(value: str) -> int:
    """The byte count of a Kubernetes storage quantity (``5Gi``, ``500M``, ``1073741824``).

    Accepts plain bytes and the suffixes Ki, Mi, Gi, Ti, k/K, M, G, T. Raises
    ValueError when it does not parse or is not a whole number of bytes.
    """
    match = _QUANTITY.match(value)
    if not match:
        raise ValueError("is not a storage size such as 512Mi, 5Gi or 10G")
    try:
        amount = Decimal(match.group(1)) * _QUANTITY_FACTORS[match.group(2)]
    except InvalidOperation as exc:  # pragma: no cover - the pattern only lets digits through
        raise ValueError("is not a number") from exc
    if amount != amount.to_integral_value():
        raise ValueError("is not a whole number of bytes")
    return int(amount)


def env_references(value: str) -> list[str]:
    """Names referenced as ``${NAME}`` in ``value`` (``$$`` is a literal ``$``), in order.

    Raises ValueError for a malformed reference (``${}``, ``${1X}``, an unclosed ``${``).
    """
    names = []
    for match in _REFERENCE.finditer(value):
        piece = match.group(0)
        if piece == "$$":
            continue
        if piece == "${":
            raise ValueError("has an unclosed ${")
        name = match.group(1)
        if not _ENV_NAME.match(name):
            raise ValueError(f"has an invalid reference ${{{name}}} (a name is letters, digits and _)")
        names.append(name)
    return names


def is_valid_slug(value: str) -> bool:
    """Whether ``value`` can be a template slug (a DNS-1123 label starting with a letter)."""
    return len(value) <= SLUG_MAX and bool(_DNS_LABEL.match(value)) and value[0].isalpha()


def is_plausible_image(reference: str) -> bool:
    return len(reference) <= 255 and bool(_IMAGE.match(reference))


# --------------------------------------------------------------------------- entry points


def parse_template(text: str, filename: str) -> TemplateSpec:
    """Parse and validate one spec file's text; raise `SpecError` with every problem found.

    When ``filename`` ends in .yaml/.yml, the spec's slug must equal its stem.
    Pure and idempotent.
    """
    data, lines, problems = _load_yaml(text, filename)
    if problems:
        raise SpecError(problems)
    return spec_from_data(data, filename, lines=lines, check_filename=True)


def spec_from_data(
    data: Any, filename: str, *, lines: dict[str, int] | None = None, check_filename: bool = False
) -> TemplateSpec:
    """Validate already-loaded YAML data (any Python value); raise `SpecError` with every problem."""
    checker = _Checker(filename, lines or {})
    spec = checker.template(data, check_filename=check_filename)
    if checker.problems or spec is None:
        # Sorted by line (stable), so the list reads top to bottom like the file.
        raise SpecError(sorted(checker.problems, key=lambda problem: problem.line or 0))
    return spec


# --------------------------------------------------------------------------- YAML loading


def _load_yaml(text: str, filename: str) -> tuple[Any, dict[str, int], list[SpecProblem]]:
    """Load one YAML document, recording each field path's line and flagging duplicate keys."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}, [SpecProblem(filename, "", "the file is empty")]
        lines: dict[str, int] = {}
        duplicates: list[SpecProblem] = []
        _walk(node, "", lines, duplicates, filename, set())
        if duplicates:
            return None, lines, duplicates
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        parts = [part for part in (exc.context, exc.problem) if part]
        message = "invalid YAML: " + (", ".join(parts) or "syntax error")
        if mark is not None:
            message += f" (line {mark.line + 1}, column {mark.column + 1})"
        return None, {}, [SpecProblem(filename, "", message, mark.line + 1 if mark else None)]
    except yaml.YAMLError as exc:
        return None, {}, [SpecProblem(filename, "", f"invalid YAML: {exc}")]
    except RecursionError:
        return None, {}, [SpecProblem(filename, "", "invalid YAML: nested too deeply")]
    finally:
        loader.dispose()
    return data, lines, []


def _walk(node, path: str, lines: dict[str, int], duplicates: list[SpecProblem], filename: str, seen: set) -> None:
    if id(node) in seen:  # aliases: visit each node once (no exponential walks)
        return
    seen.add(id(node))
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        keys: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = key_node.value
            child = _join(path, key)
            if key in keys:
                duplicates.append(
                    SpecProblem(
                        filename,
                        child,
                        f"duplicate key '{key}' (first on line {keys[key]})",
                        key_node.start_mark.line + 1,
                    )
                )
            else:
                keys[key] = key_node.start_mark.line + 1
            _walk(value_node, child, lines, duplicates, filename, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, f"{path}[{index}]", lines, duplicates, filename, seen)


# --------------------------------------------------------------------------- the checker


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _human_list(items: Iterable[str]) -> str:
    items = list(items)
    return ", ".join(items) if items else "(none)"


@dataclass
class _Service:
    """A component or add-on being checked, with the paths needed for cross-checks."""

    kind: str  # "component" or "add-on"
    path: str
    id: str | None
    obj: Any
    env_paths: dict[int, str] = field(default_factory=dict)  # id(EnvVar) -> path of its value
    import_paths: list[str] = field(default_factory=list)


class _Checker:
    def __init__(self, filename: str, lines: dict[str, int]):
        self.file = filename
        self.lines = lines
        self.problems: list[SpecProblem] = []
        self.declared: tuple[str, ...] | None = None  # the template's stages, None when they are broken
        self.modes: dict[str, str] = {}

    # --- reporting ----------------------------------------------------------------------
    def add(self, path: str, message: str) -> None:
        self.problems.append(SpecProblem(self.file, path, message, self._line(path)))

    def _line(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.lines.get("")

    # --- generic shapes -----------------------------------------------------------------
    def mapping(self, value: Any, path: str, allowed: Iterable[str], required: Iterable[str] = ()) -> dict | None:
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping, not {_kind(value)}")
            return None
        allowed = tuple(allowed)
        for key in value:
            if not isinstance(key, str):
                self.add(path, f"has a key that is not a string ({key!r})")
            elif key not in allowed:
                self.add(_join(path, key), f"unknown key; expected one of: {', '.join(allowed)}")
        for key in required:
            if key not in value:
                self.add(_join(path, key), "is required")
        return value

    def string(self, value: Any, path: str, *, allow_empty: bool = False, max_length: int | None = None) -> str | None:
        if isinstance(value, bool) or isinstance(value, int | float):
            self.add(path, f'must be a string, not {_kind(value)} (quote it: "{value}")')
            return None
        if not isinstance(value, str):
            self.add(path, f"must be a string, not {_kind(value)}")
            return None
        if not allow_empty and not value.strip():
            self.add(path, "must not be empty")
            return None
        if max_length is not None and len(value) > max_length:
            self.add(path, f"must be at most {max_length} characters (it has {len(value)})")
            return None
        return value

    def line_string(self, value: Any, path: str, *, max_length: int = NAME_MAX) -> str | None:
        text = self.string(value, path, max_length=max_length)
        if text is not None and ("\n" in text or "\r" in text):
            self.add(path, "must be a single line")
            return None
        return text.strip() if text is not None else None

    def integer(self, value: Any, path: str, *, minimum: int, maximum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"must be an integer, not {_kind(value)}")
            return None
        if not minimum <= value <= maximum:
            self.add(path, f"must be between {minimum} and {maximum} (it is {value})")
            return None
        return value

    def port(self, value: Any, path: str) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= 65535:
            self.add(path, f"must be a port between 1 and 65535 (it is {value})")
            return None
        return self.integer(value, path, minimum=1, maximum=65535)

    def boolean(self, value: Any, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.add(path, f"must be true or false, not {_kind(value)}")
            return None
        return value

    def sequence(self, value: Any, path: str) -> list | None:
        if not isinstance(value, list):
            self.add(path, f"must be a list, not {_kind(value)}")
            return None
        return value

    def argv(self, value: Any, path: str) -> tuple[str, ...] | None:
        if isinstance(value, str):
            self.add(path, f"must be a list of arguments (argv), not a string; write [sh, -c, {value!r}] for a shell")
            return None
        items = self.sequence(value, path)
        if items is None:
            return None
        if not items:
            self.add(path, "must not be empty")
            return None
        result = []
        for index, item in enumerate(items):
            text = self.string(item, f"{path}[{index}]", allow_empty=True)
            if text is not None and "\x00" in text:
                self.add(f"{path}[{index}]", "must not contain a NUL character")
                text = None
            result.append(text)
        return tuple(result) if None not in result else None

    def identifier(self, value: Any, path: str, *, max_length: int, what: str = "id") -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        if len(text) > max_length:
            self.add(path, f"must be at most {max_length} characters (it has {len(text)})")
            return None
        if not _DNS_LABEL.match(text):
            self.add(path, f"'{text}' is not a valid {what}: use lowercase letters, digits and '-', "
                           "starting with a letter and ending with a letter or digit")  # fmt: skip
            return None
        if not text[0].isalpha():
            self.add(path, f"'{text}' is not a valid {what}: it must start with a letter")
            return None
        if what == "id" and text.endswith(HEADLESS_SUFFIX):
            self.add(
                path, f"'{text}' is not a valid id: '<id>{HEADLESS_SUFFIX}' names a StatefulSet's headless Service"
            )
            return None
        return text

    def absolute_path(self, value: Any, path: str) -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        if not text.startswith("/"):
            self.add(path, f"must be an absolute path (starting with /), not '{text}'")
            return None
        if posixpath.normpath(text) != text or text.startswith("//"):
            self.add(path, f"must be a normalized path (no '.', '..', '//' or trailing '/'): '{text}'")
            return None
        return text

    def stage_list(self, value: Any, path: str) -> tuple[str, ...] | None:
        items = self.sequence(value, path)
        if items is None:
            return None
        if not items:
            self.add(path, "must list at least one stage")
            return None
        ok = True
        chosen = set()
        for index, item in enumerate(items):
            stage = self.stage_name(item, f"{path}[{index}]")
            if stage is None:
                ok = False
            elif stage in chosen:
                self.add(f"{path}[{index}]", f"lists stage '{stage}' twice")
                ok = False
            else:
                chosen.add(stage)
        return tuple(stage for stage in STAGES if stage in chosen) if ok else None

    def stage_name(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str):
            self.add(path, f"must be a stage name, not {_kind(value)}")
            return None
        if value not in STAGES:
            self.add(path, f"unknown stage '{value}'; expected one of: {', '.join(STAGES)}")
            return None
        if self.declared is not None and value not in self.declared:
            self.add(path, f"stage '{value}' is not offered by this template (see stages)")
            return None
        return value

    def all_stages(self) -> tuple[str, ...]:
        return self.declared if self.declared is not None else STAGES

    # --- the template -------------------------------------------------------------------
    def template(self, data: Any, *, check_filename: bool) -> TemplateSpec | None:
        if not isinstance(data, dict):
            self.add("", f"the file must be a mapping of fields (slug:, name:, ...), not {_kind(data)}")
            return None
        root = self.mapping(data, "", TEMPLATE_KEYS, ("slug", "name", "description", "version", "stages", "components"))
        slug = self.identifier(root.get("slug"), "slug", max_length=SLUG_MAX, what="slug") if "slug" in root else None
        if slug is not None and check_filename:
            suffix = PurePath(self.file).suffix
            stem = PurePath(self.file).stem
            if suffix in (".yaml", ".yml") and stem != slug:
                self.add("slug", f"must match the file name: the file is '{PurePath(self.file).name}', "
                                 f"so the slug must be '{stem}' (it is '{slug}')")  # fmt: skip
        name = self.line_string(root.get("name"), "name") if "name" in root else None
        description = self.string(root.get("description"), "description") if "description" in root else None
        version = self.version(root.get("version"), "version") if "version" in root else None
        repository = self.repository(root["repository"], "repository") if root.get("repository") is not None else None
        stages = self.stages(root.get("stages"), "stages") if "stages" in root else None

        services: list[_Service] = []
        components = self.components(root.get("components"), "components", services) if "components" in root else ()
        addons = self.addons(root.get("addons", []), "addons", services) if root.get("addons") is not None else ()
        self.check_ids(services)
        by_id: dict[str, _Service] = {}
        for service in services:  # with duplicate ids, the first one counts
            if service.id is not None:
                by_id.setdefault(service.id, service)
        self.check_imports(services, by_id)
        self.check_public_hosts(services)

        ssh = self.ssh_rules(root.get("ssh"), "ssh", by_id) if root.get("ssh") is not None else ()
        logs = self.log_sources(root.get("logs"), "logs", by_id) if root.get("logs") is not None else ()
        actions = self.actions(root.get("actions"), "actions", by_id) if root.get("actions") is not None else ()
        status_url = None
        if root.get("status_url") is not None:
            status_url = self.status_url(root["status_url"], "status_url", by_id)
        if stages is not None and components:
            self.check_stage_coverage(stages, components)

        if self.problems:
            return None
        return TemplateSpec(
            slug=slug,
            name=name,
            description=description.strip(),
            version=version,
            stages=stages,
            components=components,
            addons=addons,
            repository=repository,
            ssh=ssh,
            logs=logs,
            actions=actions,
            status_url=status_url,
        )

    def version(self, value: Any, path: str) -> str | None:
        return self.line_string(value, path, max_length=VERSION_MAX)

    def repository(self, value: Any, path: str) -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        text = text.strip()
        scp = _SCP_LIKE.match(text)
        if scp and "://" not in text:
            if not _HOSTNAME.match(scp.group("host")):
                self.add(path, f"'{text}' has an invalid host")
                return None
            return text
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            self.add(path, f"'{text}' is not a valid URL")
            return None
        if parts.scheme not in ("https", "ssh", "git"):
            self.add(path, f"'{text}' must be an https://, ssh:// or git:// URL (or git@host:path)")
            return None
        if parts.password is not None or (parts.username and parts.scheme == "https"):
            self.add(path, "must not contain credentials; Diploi provides repository access")
            return None
        if not parts.hostname or not _HOSTNAME.match(parts.hostname):
            self.add(path, f"'{text}' has no valid host")
            return None
        if parts.path.strip("/") == "" or parts.query or parts.fragment:
            self.add(path, f"'{text}' must name a repository path, without query or fragment")
            return None
        return text

    def stages(self, value: Any, path: str) -> dict[str, str] | None:
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping of stage to source or build, not {_kind(value)}")
            return None
        if not value:
            self.add(path, "must offer at least one stage")
            return None
        modes: dict[str, str] = {}
        ok = True
        for key, mode in value.items():
            child = _join(path, str(key))
            if key not in STAGES:
                self.add(child, f"unknown stage '{key}'; expected one of: {', '.join(STAGES)}")
                ok = False
                continue
            if mode not in ("source", "build"):
                self.add(child, f"must be 'source' or 'build', not {mode!r}")
                ok = False
                continue
            modes[key] = mode
        if not ok:
            return None
        ordered = {stage: modes[stage] for stage in STAGES if stage in modes}
        self.declared = tuple(ordered)
        self.modes = ordered
        return ordered

    # --- components and add-ons ---------------------------------------------------------
    def components(self, value: Any, path: str, services: list[_Service]) -> tuple[Component, ...]:
        items = self.sequence(value, path)
        if items is None:
            return ()
        if not items:
            self.add(path, "at least one component is required")
            return ()
        result = []
        for index, item in enumerate(items):
            service = self.component(item, f"{path}[{index}]")
            services.append(service)
            result.append(service.obj)
        return tuple(result)

    def component(self, value: Any, path: str) -> _Service:
        service = _Service("component", path, None, None)
        data = self.mapping(value, path, COMPONENT_KEYS, ("id", "name", "image", "port", "code_path", "dev_command"))
        if data is None:
            return service
        service.id = self.identifier(data.get("id"), _join(path, "id"), max_length=ID_MAX) if "id" in data else None
        name = self.line_string(data.get("name"), _join(path, "name")) if "name" in data else None
        image = self.image(data.get("image"), _join(path, "image")) if "image" in data else None
        port = self.port(data.get("port"), _join(path, "port")) if "port" in data else None
        code_path = self.absolute_path(data["code_path"], _join(path, "code_path")) if "code_path" in data else None
        dev_command = self.argv(data["dev_command"], _join(path, "dev_command")) if "dev_command" in data else None
        command = self.argv(data["command"], _join(path, "command")) if data.get("command") is not None else None
        build = self.build(data["build"], _join(path, "build")) if "build" in data else None
        health = self.health(data["health"], _join(path, "health"), port) if data.get("health") is not None else None
        env = self.env(data.get("env"), _join(path, "env"), service) if data.get("env") is not None else ()
        imports = self.imports(data.get("imports"), _join(path, "imports"), service) if data.get("imports") else ()
        storage = self.storage(data.get("storage"), _join(path, "storage")) if data.get("storage") is not None else ()
        public = self.public(data.get("public"), _join(path, "public"), port) if data.get("public") is not None else ()
        overrides = self.overrides(data.get("stages"), _join(path, "stages"), service) if data.get("stages") else {}
        security = self.security(data["security"], _join(path, "security")) if "security" in data else Security()
        replicas = 1
        if "replicas" in data:
            replicas = self.integer(data["replicas"], _join(path, "replicas"), minimum=0, maximum=REPLICAS_MAX)
        sftp = False
        if "provide_sftp_server" in data:
            sftp = self.boolean(data["provide_sftp_server"], _join(path, "provide_sftp_server"))
        service.obj = Component(
            id=service.id,
            name=name,
            image=image,
            port=port,
            code_path=code_path,
            dev_command=dev_command,
            command=command,
            build=build,
            health=health,
            env=env,
            imports=imports,
            storage=storage,
            public=public,
            stages=overrides or {},
            replicas=replicas if replicas is not None else 1,
            security=security,
            provide_sftp_server=bool(sftp),
        )
        self.check_storage_paths(storage, _join(path, "storage"))
        if code_path is not None and storage is not None and None not in storage:
            self.check_code_volume(service.obj, path)
        if storage and None not in storage:
            self.check_single_replica(service.obj, path, data)
        return service

    def addons(self, value: Any, path: str, services: list[_Service]) -> tuple[AddOn, ...]:
        items = self.sequence(value, path)
        if items is None:
            return ()
        result = []
        for index, item in enumerate(items):
            service = self.addon(item, f"{path}[{index}]")
            services.append(service)
            result.append(service.obj)
        return tuple(result)

    def addon(self, value: Any, path: str) -> _Service:
        service = _Service("add-on", path, None, None)
        if isinstance(value, dict) and "public" in value:
            self.add(_join(path, "public"), "add-ons are never public; publish a component's port instead")
            value = {key: item for key, item in value.items() if key != "public"}
        data = self.mapping(value, path, ADDON_KEYS, ("id", "name", "image", "port"))
        if data is None:
            return service
        service.id = self.identifier(data.get("id"), _join(path, "id"), max_length=ID_MAX) if "id" in data else None
        name = self.line_string(data.get("name"), _join(path, "name")) if "name" in data else None
        image = self.image(data.get("image"), _join(path, "image")) if "image" in data else None
        port = self.port(data.get("port"), _join(path, "port")) if "port" in data else None
        data_path = None
        if data.get("data_path") is not None:
            data_path = self.absolute_path(data["data_path"], _join(path, "data_path"))
        toggleable = self.boolean(data["toggleable"], _join(path, "toggleable")) if "toggleable" in data else False
        default_enabled = True
        if "default_enabled" in data:
            default_enabled = self.boolean(data["default_enabled"], _join(path, "default_enabled"))
            if default_enabled is False and toggleable is False:
                self.add(_join(path, "default_enabled"), "only a toggleable add-on can be off by default "
                                                         "(set toggleable: true)")  # fmt: skip
        command = self.argv(data["command"], _join(path, "command")) if data.get("command") is not None else None
        health = self.health(data["health"], _join(path, "health"), port) if data.get("health") is not None else None
        env = self.env(data.get("env"), _join(path, "env"), service) if data.get("env") is not None else ()
        imports = self.imports(data.get("imports"), _join(path, "imports"), service) if data.get("imports") else ()
        storage = self.storage(data.get("storage"), _join(path, "storage")) if data.get("storage") is not None else ()
        stages = self.all_stages()
        if "stages" in data:
            stages = self.stage_list(data["stages"], _join(path, "stages"))
        security = self.security(data["security"], _join(path, "security")) if "security" in data else Security()
        service.obj = AddOn(
            id=service.id,
            name=name,
            image=image,
            port=port,
            data_path=data_path,
            toggleable=bool(toggleable),
            default_enabled=default_enabled if default_enabled is not None else True,
            command=command,
            health=health,
            env=env,
            imports=imports,
            storage=storage,
            stages=stages,
            security=security,
        )
        self.check_storage_paths(storage, _join(path, "storage"))
        if data_path is not None and storage and None not in storage:
            if not any(_is_under(data_path, volume.path) for volume in storage):
                self.add(_join(path, "data_path"), f"'{data_path}' is not on any of this add-on's volumes, "
                                                   "so its data would be lost on every restart")  # fmt: skip
        return service

    def security(self, value: Any, path: str) -> Security:
        data = self.mapping(value, path, ("level", "run_as_user", "run_as_group", "fs_group", "capabilities"))
        if data is None:
            return Security()
        level = data.get("level", "baseline")
        if level not in ("baseline", "restricted"):
            self.add(_join(path, "level"), f"'{level}' is not a Pod Security level; expected baseline or restricted")
            level = "baseline"
        ids = {}
        for key in ("run_as_user", "run_as_group", "fs_group"):
            if data.get(key) is not None:
                ids[key] = self.integer(data[key], _join(path, key), minimum=0, maximum=ID_NUMBER_MAX)
        capabilities = None
        if "capabilities" in data:
            items = self.sequence(data["capabilities"], _join(path, "capabilities")) or []
            allowed = RESTRICTED_CAPABILITIES if level == "restricted" else BASELINE_CAPABILITIES
            capabilities = []
            for index, item in enumerate(items):
                if item not in allowed:
                    self.add(f"{path}.capabilities[{index}]", f"'{item}' is not allowed at the {level} level; "
                                                              f"expected one of: {', '.join(allowed)}")  # fmt: skip
                elif item not in capabilities:
                    capabilities.append(item)
            capabilities = tuple(capabilities)
        security = Security(level=level, capabilities=capabilities, **{k: v for k, v in ids.items() if v is not None})
        if level == "restricted" and not security.run_as_non_root:
            self.add(_join(path, "level"), "restricted needs run_as_user (a user id other than 0): "
                                           "the restricted level refuses containers that may run as root")  # fmt: skip
        return security

    def image(self, value: Any, path: str) -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        match = _IMAGE.match(text) if len(text) <= 255 else None
        if not match:
            self.add(path, f"'{text}' is not a valid image reference (like postgres:16 or ghcr.io/org/app:1.2)")
            return None
        if match.group("digest") is None and match.group("tag") is None:
            self.add(path, f"'{text}' must pin a version tag or digest (like postgres:16)")
            return None
        if match.group("digest") is None and match.group("tag") == "latest":
            self.add(path, f"'{text}' must pin a version tag or digest (like postgres:16), not latest")
            return None
        return text

    def build(self, value: Any, path: str) -> Build | None:
        data = self.mapping(value if value is not None else {}, path, ("dockerfile", "context"))
        if data is None:
            return None
        values = {}
        for key, default in (("dockerfile", "Dockerfile"), ("context", ".")):
            text = self.string(data.get(key, default), _join(path, key))
            if text is None:
                continue
            normalized = posixpath.normpath(text)
            if text.startswith("/") or normalized == ".." or normalized.startswith("../"):
                self.add(_join(path, key), f"must be a path inside the repository, not '{text}'")
                continue
            values[key] = text
        return Build(**values) if len(values) == 2 else None

    def health(self, value: Any, path: str, service_port: int | None) -> HealthCheck | None:
        data = self.mapping(value, path, ("http", "tcp", "port", "initial_delay_seconds", "period_seconds"))
        if data is None:
            return None
        if ("http" in data) == ("tcp" in data):
            self.add(path, "must have exactly one of http (a path) or tcp (a port)")
            return None
        options = {}
        for key in ("initial_delay_seconds", "period_seconds"):
            if key in data:
                minimum = 0 if key == "initial_delay_seconds" else 1
                number = self.integer(data[key], _join(path, key), minimum=minimum, maximum=PROBE_SECONDS_MAX)
                if number is None:
                    return None
                options[key] = number
        if "tcp" in data:
            if "port" in data:
                self.add(_join(path, "port"), "is only for http checks; a tcp check names its port in tcp")
                return None
            port_path = _join(path, "tcp")
            port = self.port(data["tcp"], port_path)
            check_path = None
        else:
            check_path = self.string(data["http"], _join(path, "http"))
            if check_path is not None and not check_path.startswith("/"):
                self.add(_join(path, "http"), f"must be a URL path starting with /, not '{check_path}'")
                check_path = None
            port_path = _join(path, "port")
            port = self.port(data["port"], port_path) if "port" in data else service_port
            if check_path is None:
                return None
        if port is None:
            return None
        if service_port is not None and port != service_port:
            self.add(port_path, f"port {port} is not exposed (the container's port is {service_port})")
            return None
        return HealthCheck(port=port, path=check_path, **options)

    def public(self, value: Any, path: str, service_port: int | None) -> tuple[PublicEndpoint, ...]:
        items = self.sequence(value, path)
        if items is None:
            return ()
        result = []
        seen = set()
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            data = self.mapping(item, item_path, ("port", "host"))
            if data is None:
                continue
            port = self.port(data["port"], _join(item_path, "port")) if "port" in data else service_port
            if port is not None and service_port is not None and port != service_port:
                self.add(_join(item_path, "port"), f"port {port} is not the component's port ({service_port})")
                port = None
            host = DEFAULT_HOST
            if "host" in data:
                host = self.host_format(data["host"], _join(item_path, "host"))
            if port is None or host is None:
                continue
            if host in seen:
                self.add(_join(item_path, "host"), f"host '{host}' is listed twice")
                continue
            seen.add(host)
            result.append(PublicEndpoint(port=port, host=host))
        return tuple(result)

    def host_format(self, value: Any, path: str) -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        if not text.endswith(".[base-domain]"):
            self.add(path, f"'{text}' must end in .[base-domain]")
            return None
        if text.count("[base-domain]") != 1:
            self.add(path, f"'{text}' may use [base-domain] only once, at the end")
            return None
        if not self.placeholders(text, path, HOST_PLACEHOLDERS):
            return None
        if "[deployment]" not in text:
            self.add(path, f"'{text}' must contain [deployment], so each deployment gets its own host")
            return None
        # Unique by construction: the project's short name (unique across the installation) is the whole
        # part just above the base domain, so [deployment], in a part before it, can never reach it.
        if not text.endswith(".[project].[base-domain]"):
            self.add(path, f"'{text}' must end in .[project].[base-domain], with [deployment] before it "
                           "(e.g. [component]-[deployment].[project].[base-domain]), so no two projects can "
                           "get the same host")  # fmt: skip
            return None
        sample = _fill(text, _SAMPLE_PLACEHOLDERS)
        labels = sample.split(".")
        if any(not _HOST_LABEL.match(label) or len(label) > 63 for label in labels):
            self.add(path, f"'{text}' does not give a valid host name: use lowercase letters, digits, '-' and "
                           "placeholders, in dot-separated parts")  # fmt: skip
            return None
        return text

    def placeholders(self, text: str, path: str, allowed: tuple[str, ...]) -> bool:
        unknown = [name for name in _PLACEHOLDER.findall(text) if name not in allowed]
        if unknown:
            choices = ", ".join(f"[{name}]" for name in allowed)
            self.add(path, f"unknown placeholder [{unknown[0]}]; expected one of: {choices}")
            return False
        return True

    def env(self, value: Any, path: str, service: _Service, *, stage: str | None = None) -> tuple[EnvVar, ...]:
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping of variable names to values, not {_kind(value)}")
            return ()
        result = []
        for name, spec in value.items():
            var_path = _join(path, str(name))
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                self.add(var_path, f"'{name}' is not a valid variable name (letters, digits and _, "
                                   "not starting with a digit)")  # fmt: skip
                continue
            var = self.env_var(name, spec, var_path, stage=stage)
            if var is None:
                continue
            service.env_paths[id(var)] = _join(var_path, "value") if isinstance(spec, dict) else var_path
            result.append(var)
        return tuple(result)

    def env_var(self, name: str, spec: Any, path: str, *, stage: str | None) -> EnvVar | None:
        stages = (stage,) if stage else self.all_stages()
        if isinstance(spec, dict):
            allowed = ("type", "value") if stage else ("type", "value", "stages")
            data = self.mapping(spec, path, allowed)
            if data is None:
                return None
            value_path = _join(path, "value")
            raw = data.get("value")
            if "type" in data:
                kind = data["type"]
                if kind not in ("string", "integer", "boolean", "secret"):
                    self.add(_join(path, "type"), f"unknown type {kind!r}; expected string, integer, boolean or secret")
                    return None
            else:
                kind = _inferred_type(raw)
            if "stages" in data:
                stages = self.stage_list(data["stages"], _join(path, "stages"))
                if stages is None:
                    return None
        else:
            if isinstance(spec, list):
                self.add(path, "must be a value or a mapping with type, value and stages, not a list")
                return None
            if spec is None:
                self.add(path, 'has no value; write {type: secret} for a generated secret, or "" for an empty string')
                return None
            value_path, raw, kind = path, spec, _inferred_type(spec)
        value = self.env_value(kind, raw, value_path)
        if value is _INVALID:
            return None
        return EnvVar(name=name, type=kind, value=value, stages=stages)

    def env_value(self, kind: str, raw: Any, path: str) -> Any:
        if raw is None:
            if kind == "secret":
                return None  # generated per deployment
            self.add(path, "is required (only a secret may leave it out, to have it generated)")
            return _INVALID
        if isinstance(raw, float) or not isinstance(raw, str | int | bool):
            self.add(path, f"must be a string, an integer or true/false, not {_kind(raw)}"
                           + (f' (quote it: "{raw}")' if isinstance(raw, float) else ""))  # fmt: skip
            return _INVALID
        if kind == "integer":
            if isinstance(raw, int) and not isinstance(raw, bool):
                return str(raw)
            if isinstance(raw, str) and _INTEGER.match(raw.strip()):
                return str(int(raw.strip()))
            self.add(path, f"must be an integer for type integer, not {raw!r}")
            return _INVALID
        if kind == "boolean":
            if isinstance(raw, bool):
                return "true" if raw else "false"
            if isinstance(raw, str) and raw in ("true", "false"):
                return raw
            self.add(path, f"must be true or false for type boolean, not {raw!r}")
            return _INVALID
        if not isinstance(raw, str):
            self.add(path, f'must be a string for type {kind}, not {_kind(raw)} (quote it: "{raw}")')
            return _INVALID
        if "\x00" in raw:
            self.add(path, "must not contain a NUL character")
            return _INVALID
        try:
            env_references(raw)
        except ValueError as exc:
            self.add(path, str(exc))
            return _INVALID
        return raw

    def imports(self, value: Any, path: str, service: _Service) -> tuple[EnvImport, ...]:
        items = self.sequence(value, path)
        if items is None:
            return ()
        result = []
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            rename = None
            if isinstance(item, dict):
                data = self.mapping(item, item_path, ("from", "as"), ("from",))
                if data is None or "from" not in data:
                    continue
                reference_path = _join(item_path, "from")
                reference = self.string(data["from"], reference_path)
                if "as" in data:
                    rename = self.string(data["as"], _join(item_path, "as"))
                    if rename is None:
                        continue
                    if not _ENV_NAME.match(rename):
                        self.add(_join(item_path, "as"), f"'{rename}' is not a valid variable name")
                        continue
            else:
                reference_path = item_path
                reference = self.string(item, item_path)
            if reference is None:
                continue
            source, dot, pattern = reference.partition(".")
            if not dot or not source or not pattern:
                self.add(reference_path, f"'{reference}' must be <id>.<VARIABLE>, like postgres.POSTGRES_* "
                                         "or postgres.POSTGRES_USER")  # fmt: skip
                continue
            if not _ENV_PATTERN.match(pattern) or pattern[0].isdigit():
                self.add(reference_path, f"'{pattern}' is not a variable name or pattern (letters, digits, _, * and ?)")
                continue
            entry = EnvImport(source=source, pattern=pattern, rename=rename)
            if entry.is_wildcard and rename is not None:
                self.add(_join(item_path, "as"), f"cannot rename the wildcard import '{reference}'; "
                                                 "import one variable to rename it")  # fmt: skip
                continue
            service.import_paths.append(reference_path)
            result.append(entry)
        return tuple(result)

    def storage(self, value: Any, path: str) -> tuple[Storage, ...]:
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping of volume names to {{path, size, stages}}, not {_kind(value)}")
            return (None,)
        result = []
        for name, spec in value.items():
            volume_path = _join(path, str(name))
            ok = self.identifier(name, volume_path, max_length=STORAGE_NAME_MAX, what="storage name") is not None
            data = self.mapping(spec, volume_path, ("path", "size", "stages"), ("path", "size"))
            if data is None:
                result.append(None)
                continue
            mount = self.absolute_path(data["path"], _join(volume_path, "path")) if "path" in data else None
            if mount == "/":
                self.add(_join(volume_path, "path"), "cannot mount a volume on /")
                mount = None
            size, size_bytes = self.size(data["size"], _join(volume_path, "size")) if "size" in data else (None, None)
            stages = self.all_stages()
            if "stages" in data:
                stages = self.stage_list(data["stages"], _join(volume_path, "stages"))
            if not ok or None in (mount, size, stages):
                result.append(None)
                continue
            result.append(Storage(name=name, path=mount, size=size, size_bytes=size_bytes, stages=stages))
        return tuple(result)

    def size(self, value: Any, path: str) -> tuple[str | None, int | None]:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        text = self.string(value, path)
        if text is None:
            return None, None
        try:
            size_bytes = parse_quantity(text)
        except ValueError as exc:
            self.add(path, f"'{text}' {exc}")
            return None, None
        if size_bytes <= 0:
            self.add(path, f"'{text}' must be greater than zero")
            return None, None
        # Kubernetes spells the decimal kilo "k"; accept "K" and store what the API server takes.
        return (text[:-1] + "k" if text.endswith("K") else text), size_bytes

    def overrides(self, value: Any, path: str, service: _Service) -> dict[str, StageOverride] | None:
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping of stage to overrides, not {_kind(value)}")
            return None
        result = {}
        for stage, spec in value.items():
            stage_path = _join(path, str(stage))
            if self.stage_name(stage, stage_path) is None:
                continue
            data = self.mapping(spec, stage_path, ("command", "env", "replicas"))
            if data is None:
                continue
            command = None
            if data.get("command") is not None:
                command = self.argv(data["command"], _join(stage_path, "command"))
            env = ()
            if data.get("env") is not None:
                env = self.env(data["env"], _join(stage_path, "env"), service, stage=stage)
            replicas = None
            if data.get("replicas") is not None:
                replicas = self.integer(
                    data["replicas"], _join(stage_path, "replicas"), minimum=0, maximum=REPLICAS_MAX
                )
            result[stage] = StageOverride(command=command, env=env, replicas=replicas)
        return {stage: result[stage] for stage in STAGES if stage in result}

    # --- per-service rules --------------------------------------------------------------
    def check_storage_paths(self, storage: tuple, path: str) -> None:
        seen: dict[str, str] = {}
        for volume in storage:
            if volume is None:
                continue
            if volume.path in seen:
                self.add(_join(_join(path, volume.name), "path"),
                         f"'{volume.path}' is already the mount path of volume '{seen[volume.path]}'")  # fmt: skip
            else:
                seen[volume.path] = volume.name

    def check_code_volume(self, component: Component, path: str) -> None:
        for stage, mode in self.modes.items():
            volumes = component.storage_for(stage)
            if mode == "source":
                if not any(volume.path == component.code_path for volume in volumes):
                    self.add(_join(path, "storage"), f"in {stage} (source) the code at {component.code_path} needs a "
                                                     f"volume: add one with path {component.code_path}")  # fmt: skip
            else:
                for volume in volumes:
                    if _is_under(component.code_path, volume.path):
                        self.add(_join(_join(path, "storage"), volume.name),
                                 f"in {stage} (build) the volume at {volume.path} would hide the built code at "
                                 f"{component.code_path}; limit it to source stages with stages: [...]")  # fmt: skip

    def check_single_replica(self, component: Component, path: str, data: dict) -> None:
        for stage in self.all_stages():
            if component.storage_for(stage) and component.replicas_for(stage) > 1:
                override = component.stages.get(stage)
                if override is not None and override.replicas is not None:
                    where = _join(_join(_join(path, "stages"), stage), "replicas")
                else:
                    where = _join(path, "replicas")
                self.add(where, f"a component with volumes in {stage} runs one replica at most "
                                "(volumes attach to one pod)")  # fmt: skip

    # --- cross-checks -------------------------------------------------------------------
    def check_ids(self, services: list[_Service]) -> None:
        first: dict[str, _Service] = {}
        for service in services:
            if service.id is None:
                continue
            if service.id in first:
                other = first[service.id].path
                self.add(_join(service.path, "id"), f"duplicate id '{service.id}' (also used by {other})")
            else:
                first[service.id] = service

    def check_imports(self, services: list[_Service], by_id: dict[str, _Service]) -> None:
        """Imports name a known source and match something; references resolve in every stage."""
        valid: list[tuple[_Service, int, EnvImport]] = []
        for service in services:
            if service.obj is None:
                continue
            for index, entry in enumerate(service.obj.imports):
                where = service.import_paths[index]
                source = by_id.get(entry.source)
                if entry.source == service.id:
                    self.add(where, f"'{service.id}' cannot import from itself")
                elif source is None or source.obj is None:
                    self.add(where, f"unknown source '{entry.source}'; expected one of: "
                                    f"{_human_list(i for i in by_id if i != service.id)}")  # fmt: skip
                elif not _matches(source.obj, entry.pattern):
                    names = sorted({var.name for var in _all_env(source.obj)})
                    self.add(where, f"'{entry.source}.{entry.pattern}' matches no variable of '{entry.source}' "
                                    f"(it defines: {_human_list(names)})")  # fmt: skip
                else:
                    valid.append((service, index, entry))
        for service in services:
            if service.obj is not None:
                self.check_environment(service, by_id, [(i, e) for s, i, e in valid if s is service])

    def check_environment(self, service: _Service, by_id: dict[str, _Service], imports: list) -> None:
        missing: dict[tuple[str, str], list[str]] = {}
        present: dict[str, list[str]] = {}
        reported: set[tuple[str, str]] = set()
        for stage in self.all_stages():
            if isinstance(service.obj, AddOn) and stage not in (service.obj.stages or ()):
                continue
            own = {var.name: var for var in service.obj.env_for(stage)}
            imported: dict[str, tuple[int, _Service, EnvVar]] = {}
            for index, entry in imports:
                source = by_id[entry.source]
                if isinstance(source.obj, AddOn) and stage not in (source.obj.stages or ()):
                    continue
                for var in source.obj.env_for(stage):
                    if not fnmatchcase(var.name, entry.pattern):
                        continue
                    name = entry.rename or var.name
                    where = service.import_paths[index]
                    if name in own and (where, name) not in reported:
                        reported.add((where, name))
                        self.add(where, f"imports {name}, which this {service.kind} already defines in its env")
                    elif name in imported and imported[name][0] != index and (where, name) not in reported:
                        reported.add((where, name))
                        other = service.import_paths[imported[name][0]]
                        self.add(where, f"imports {name}, which {other} imports too")
                    else:
                        imported.setdefault(name, (index, source, var))
            for var in own.values():
                where = service.env_paths.get(id(var))
                if where is None or var.type not in ("string", "secret") or var.value is None:
                    continue
                present.setdefault(where, []).append(stage)
                for ref in env_references(var.value):
                    if ref in own:
                        target, provider = own[ref], None
                    elif ref in imported:
                        _, provider, target = imported[ref]
                    else:
                        missing.setdefault((where, ref), []).append(stage)
                        continue
                    if provider is not None and isinstance(provider.obj, AddOn) and provider.obj.toggleable:
                        key = (where, f"optional:{ref}")
                        if key not in reported:
                            reported.add(key)
                            self.add(where, f"references ${{{ref}}}, imported from the optional add-on "
                                            f"'{provider.id}' that a deployment may turn off; import a ready-made "
                                            "variable from it instead")  # fmt: skip
                    if target.type == "secret" and var.type != "secret" and (where, f"secret:{ref}") not in reported:
                        reported.add((where, f"secret:{ref}"))
                        self.add(where, f"references the secret ${{{ref}}}, so it must be a secret too "
                                        "(type: secret)")  # fmt: skip
            self.check_cycles(service, own, reported)
        for (where, ref), stages in missing.items():
            if stages == present.get(where):
                self.add(where, f"references ${{{ref}}}, which is not defined: no variable or import of this "
                                f"{service.kind} provides it")  # fmt: skip
            else:
                self.add(where, f"references ${{{ref}}}, which is not defined in {', '.join(stages)}")

    def check_cycles(self, service: _Service, own: dict[str, EnvVar], reported: set) -> None:
        graph = {}
        for name, var in own.items():
            refs = []
            if var.type in ("string", "secret") and var.value is not None:
                refs = [ref for ref in env_references(var.value) if ref in own]
            graph[name] = refs
        state: dict[str, int] = {}

        def visit(name: str, trail: list[str]) -> None:
            state[name] = 1
            for ref in graph[name]:
                if state.get(ref) == 1:
                    cycle = trail[trail.index(ref) :] + [ref] if ref in trail else [name, ref]
                    where = service.env_paths.get(id(own[cycle[0]]))
                    if where and (where, "cycle") not in reported:
                        reported.add((where, "cycle"))
                        chain = " → ".join(f"${{{item}}}" for item in cycle)
                        self.add(where, f"reference cycle: {chain}")
                elif ref not in state:
                    visit(ref, trail + [ref])
            state[name] = 2

        for name in graph:
            if name not in state:
                visit(name, [name])

    def check_public_hosts(self, services: list[_Service]) -> None:
        seen: dict[str, str] = {}
        for service in services:
            if not isinstance(service.obj, Component) or service.id is None:
                continue
            for index, endpoint in enumerate(service.obj.public):
                host = endpoint.host.replace("[component]", service.id)
                where = f"{service.path}.public[{index}].host"
                if host in seen:
                    self.add(where, f"gives the same host as {seen[host]}; use [component] or another prefix")
                else:
                    seen[host] = where

    def check_stage_coverage(self, stages: dict[str, str], components: tuple[Component, ...]) -> None:
        for stage in stages:
            if all(c is not None and c.replicas_for(stage) == 0 for c in components):
                self.add(f"stages.{stage}", "no component runs in this stage (every component has 0 replicas here)")

    def ssh_rules(self, value: Any, path: str, by_id: dict[str, _Service]) -> tuple[SshRule, ...]:
        items = self.sequence(value, path)
        if items is None:
            return ()
        result = []
        taken: dict[tuple[str, str], str] = {}
        users: dict[tuple[str, str], str] = {}
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            data = self.mapping(item, item_path, ("component", "stages", "user"), ("component", "stages"))
            if data is None:
                continue
            component = self.component_ref(data.get("component"), _join(item_path, "component"), by_id, "SSH")
            stages = self.stage_list(data["stages"], _join(item_path, "stages")) if "stages" in data else None
            user = DEFAULT_SSH_USER
            if "user" in data:
                user = self.ssh_user(data["user"], _join(item_path, "user"))
            if None in (component, stages, user):
                continue
            for stage in stages:
                if (component, stage) in taken:
                    self.add(_join(item_path, "stages"), f"'{component}' already has an SSH rule for {stage} "
                                                         f"({taken[component, stage]})")  # fmt: skip
                    break
                login = user.replace("[component]", component)
                if (login, stage) in users:
                    self.add(_join(item_path, "user"), f"gives the same SSH user as {users[login, stage]}; "
                                                       "use [component] in it")  # fmt: skip
                    break
                taken[component, stage] = item_path
                users[login, stage] = item_path
            else:
                result.append(SshRule(component=component, stages=stages, user=user))
        return tuple(result)

    def component_ref(self, value: Any, path: str, by_id: dict[str, _Service], what: str) -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        service = by_id.get(text)
        if service is None:
            components = [sid for sid, s in by_id.items() if s.kind == "component"]
            self.add(path, f"unknown component '{text}'; expected one of: {_human_list(components)}")
            return None
        if service.kind != "component":
            self.add(path, f"'{text}' is an add-on; {what} reaches components only")
            return None
        return text

    def service_ref(self, value: Any, path: str, by_id: dict[str, _Service]) -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        if text not in by_id:
            self.add(path, f"unknown component or add-on '{text}'; expected one of: {_human_list(by_id)}")
            return None
        return text

    def ssh_user(self, value: Any, path: str) -> str | None:
        text = self.string(value, path)
        if text is None or not self.placeholders(text, path, SSH_PLACEHOLDERS):
            return None
        if "[deployment]" not in text:
            self.add(path, f"'{text}' must contain [deployment], so each deployment gets its own user")
            return None
        sample = _fill(text, _SAMPLE_PLACEHOLDERS)
        if not _SSH_USER.match(sample) or len(sample) > 64:
            self.add(path, f"'{text}' does not give a valid user name: use lowercase letters, digits, '-', '_', "
                           "'.' and placeholders")  # fmt: skip
            return None
        return text

    def log_sources(self, value: Any, path: str, by_id: dict[str, _Service]) -> tuple[LogSource, ...]:
        items = self.sequence(value, path)
        if items is None:
            return ()
        result = []
        names: set[str] = set()
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            data = self.mapping(item, item_path, ("name", "component", "path", "command"), ("name", "component"))
            if data is None:
                continue
            name = self.unique_name(data.get("name"), _join(item_path, "name"), names) if "name" in data else None
            component = self.service_ref(data.get("component"), _join(item_path, "component"), by_id)
            if data.get("path") is not None and data.get("command") is not None:
                self.add(item_path, "give either path (a file to follow) or command (what to run), not both")
                continue
            log_path, command = None, ()
            if data.get("path") is not None:
                log_path = self.absolute_path(data["path"], _join(item_path, "path"))
                if log_path is None:
                    continue
            if data.get("command") is not None:
                command = self.argv(data["command"], _join(item_path, "command"))
                if command is None:
                    continue
            if name is not None and component is not None:
                result.append(LogSource(name=name, component=component, path=log_path, command=command))
        return tuple(result)

    def actions(self, value: Any, path: str, by_id: dict[str, _Service]) -> tuple[Action, ...]:
        items = self.sequence(value, path)
        if items is None:
            return ()
        result = []
        names: set[str] = set()
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            data = self.mapping(item, item_path, ("name", "component", "command", "stages", "confirm",
                                                  "timeout_seconds"), ("name", "component", "command"))  # fmt: skip
            if data is None:
                continue
            name = self.unique_name(data.get("name"), _join(item_path, "name"), names) if "name" in data else None
            component = self.service_ref(data.get("component"), _join(item_path, "component"), by_id)
            command = self.argv(data["command"], _join(item_path, "command")) if "command" in data else None
            stages = self.all_stages()
            if "stages" in data:
                stages = self.stage_list(data["stages"], _join(item_path, "stages"))
            confirm = self.action_confirm(data.get("confirm", False), _join(item_path, "confirm"), stages)
            timeout = None
            if data.get("timeout_seconds") is not None:
                timeout = self.integer(data["timeout_seconds"], _join(item_path, "timeout_seconds"),
                                       minimum=1, maximum=ACTION_TIMEOUT_MAX)  # fmt: skip
                if timeout is None:
                    continue
            if None not in (name, component, command, stages, confirm):
                result.append(Action(name=name, component=component, command=command, stages=stages,
                                     confirm=confirm, timeout_seconds=timeout))  # fmt: skip
        return tuple(result)

    def action_confirm(self, value: Any, path: str, stages: tuple[str, ...] | None) -> tuple[str, ...] | None:
        """``confirm``: true (ask first in every stage of the action), false, or the stages that ask first."""
        if isinstance(value, bool):
            return tuple(stages or ()) if value else ()
        if not isinstance(value, list):
            self.add(path, f"must be true, false or a list of stages (ask first only there), not {_kind(value)}")
            return None
        chosen = self.stage_list(value, path)
        if chosen is None or stages is None:
            return chosen
        outside = [stage for stage in chosen if stage not in stages]
        if outside:
            self.add(path, f"lists {_human_list(outside)}, where this action is not offered "
                           f"(its stages: {_human_list(list(stages))})")  # fmt: skip
            return None
        return chosen

    def unique_name(self, value: Any, path: str, names: set[str]) -> str | None:
        name = self.line_string(value, path, max_length=80)
        if name is None:
            return None
        if name in names:
            self.add(path, f"the name '{name}' is used twice")
            return None
        names.add(name)
        return name

    def status_url(self, value: Any, path: str, by_id: dict[str, _Service]) -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            self.add(path, f"'{text}' is not a valid URL")
            return None
        if parts.scheme != "http" or not parts.hostname:
            self.add(path, f"'{text}' must be http://<component>:<port>/<path>; Diploi requests it inside "
                           "the deployment")  # fmt: skip
            return None
        service = by_id.get(parts.hostname)
        if service is None or service.kind != "component":
            components = [sid for sid, s in by_id.items() if s.kind == "component"]
            self.add(path, f"'{parts.hostname}' is not a component; expected one of: {_human_list(components)}")
            return None
        expected = service.obj.port if service.obj is not None else None
        port = port or 80
        if expected is not None and port != expected:
            self.add(path, f"port {port} is not the port of '{parts.hostname}' ({expected})")
            return None
        return text


_INVALID = object()


def _inferred_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return "string"


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"[{key}]", value)
    return text


def _is_under(path: str, mount: str) -> bool:
    return path == mount or path.startswith(mount.rstrip("/") + "/")


def _all_env(service: Component | AddOn) -> list[EnvVar]:
    variables = list(service.env)
    if isinstance(service, Component):
        for override in service.stages.values():
            variables.extend(override.env)
    return variables


def _matches(service: Component | AddOn, pattern: str) -> bool:
    return any(fnmatchcase(var.name, pattern) for var in _all_env(service))
