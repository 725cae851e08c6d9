"""Resolving a deployment's environment: template values, generated secrets,
the deployment's overrides, imports between services and ``${NAME}`` references.

Pure functions; the result is what each service's env Secret holds.
"""

from __future__ import annotations

import fnmatch
import re
import secrets
from collections.abc import Mapping

from templates_catalog.spec import AddOn, Component, EnvVar, Stage, TemplateSpec

# ${NAME} references another variable; $$ is a literal $.
_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_BYTES = 24
# Bounds on what references may expand to: each value, and a service's whole environment (its
# Secret; Kubernetes refuses one over 1 MiB). Checked as values resolve, so a chain of doubling
# references fails at once instead of growing exponentially.
VALUE_MAX_BYTES = 32 * 1024
ENVIRONMENT_MAX_BYTES = 256 * 1024


def secret_key(service_id: str, name: str) -> str:
    """Where a generated secret is kept in `Deployment.generated_secrets`."""
    return f"{service_id}.{name}"


def _services(spec: TemplateSpec) -> list[Component | AddOn]:
    return [*spec.components, *spec.addons]


def missing_secrets(spec: TemplateSpec, generated: Mapping[str, str]) -> dict[str, str]:
    """New random values for every generated secret of ``spec`` (all stages) not yet in ``generated``.

    Callers store them once; after that they never change.
    """
    fresh = {}
    for service in _services(spec):
        variables = list(service.env)
        if isinstance(service, Component):
            variables += [var for override in service.stages.values() for var in override.env]
        for var in variables:
            key = secret_key(service.id, var.name)
            if var.generated and key not in generated and key not in fresh:
                fresh[key] = secrets.token_urlsafe(SECRET_BYTES)
    return fresh


class EnvironmentError(ValueError):
    """A deployment's environment cannot be resolved (e.g. a generated secret was never stored)."""


class EnvironmentTooLarge(EnvironmentError):
    """References would expand a value or an environment past the bounds (VALUE_MAX_BYTES, ENVIRONMENT_MAX_BYTES)."""


def _own_values(
    service: Component | AddOn,
    stage: Stage,
    generated: Mapping[str, str],
    overrides: Mapping[str, str],
) -> dict[str, str]:
    values: dict[str, str] = {}
    for var in service.env_for(stage):
        values[var.name] = _value(service.id, var, generated)
    for name, value in overrides.items():
        values[name] = str(value)
    return values


def _value(service_id: str, var: EnvVar, generated: Mapping[str, str]) -> str:
    if var.generated:
        key = secret_key(service_id, var.name)
        if key not in generated:
            raise EnvironmentError(f"the generated secret {key} was never stored")
        return generated[key]
    if var.type == "boolean":
        return "true" if str(var.value).lower() in ("true", "1", "yes", "on") else "false"
    return str(var.value)


def _interpolate(values: dict[str, str], literal: frozenset[str] = frozenset()) -> dict[str, str]:
    """Replace ``${NAME}`` with the value of NAME from the same environment, ``$$`` with ``$``.

    References resolve recursively; an unknown name or a cycle is left as
    written. Names in ``literal`` (values already resolved where they came
    from, i.e. imports) are used as they are, never scanned again.
    """
    resolved: dict[str, str] = {name: values[name] for name in literal if name in values}

    def resolve(name: str, stack: tuple[str, ...]) -> str:
        if name in resolved:
            return resolved[name]
        raw = values[name]

        def substitute(match: re.Match) -> str:
            ref = match.group(1)
            if ref is None:
                return "$"
            if ref not in values or ref in stack:
                return match.group(0)
            return resolve(ref, (*stack, ref))

        value = _REFERENCE.sub(substitute, raw)
        if len(value.encode()) > VALUE_MAX_BYTES:
            raise EnvironmentTooLarge(
                f"{name} would be longer than {VALUE_MAX_BYTES // 1024} KiB once its references are filled in"
            )
        resolved[name] = value
        return value

    for name in values:
        resolve(name, (name,))
    total = sum(len(name) + len(value.encode()) for name, value in resolved.items())
    if total > ENVIRONMENT_MAX_BYTES:
        raise EnvironmentTooLarge(f"the environment would be larger than {ENVIRONMENT_MAX_BYTES // 1024} KiB")
    return resolved


def resolve_environment(
    spec: TemplateSpec,
    stage: Stage,
    *,
    generated: Mapping[str, str],
    overrides: Mapping[str, Mapping[str, str]],
    present: set[str],
) -> dict[str, dict[str, str]]:
    """The environment of every service in ``present``, by service id.

    Imported variables come first and a service's own variables win over them;
    the deployment's overrides win over the template. Imports read the source's
    own resolved values (not what the source imported itself).
    """
    own = {
        service.id: _interpolate(_own_values(service, stage, generated, overrides.get(service.id, {})))
        for service in _services(spec)
    }
    result = {}
    for service in _services(spec):
        if service.id not in present:
            continue
        combined: dict[str, str] = {}
        for entry in service.imports:
            if entry.source not in present:
                continue  # an add-on that is off (or not in this stage) exports nothing
            source_values = own.get(entry.source, {})
            for name, value in source_values.items():
                if fnmatch.fnmatchcase(name, entry.pattern):
                    combined[entry.rename or name] = value
        own_values = _own_values(service, stage, generated, overrides.get(service.id, {}))
        imported = frozenset(combined) - frozenset(own_values)
        combined.update(own_values)
        result[service.id] = _interpolate(combined, literal=imported)
    return result


def _references(raw: str) -> set[str]:
    return {match.group(1) for match in _REFERENCE.finditer(raw) if match.group(1)}


def _secret_closure(raw: Mapping[str, str], secret: set[str]) -> set[str]:
    """``secret`` plus every name whose value references a secret one, directly or through others."""
    found = set(secret)
    changed = True
    while changed:
        changed = False
        for name, value in raw.items():
            if name not in found and _references(value) & found:
                found.add(name)
                changed = True
    return found


def secret_variables(
    spec: TemplateSpec, stage: Stage, *, overrides: Mapping[str, Mapping[str, str]], present: set[str]
) -> dict[str, set[str]]:
    """The names whose values are secret, by service id: declared secrets (in the stage, stage
    overrides included), imports of secrets, and any value (the template's or an override) that
    references a secret. Shown masked; revealed one at a time, audited."""
    raw_own: dict[str, dict[str, str]] = {}
    own_secret: dict[str, set[str]] = {}
    for service in _services(spec):
        values = {var.name: var.value or "" for var in service.env_for(stage)}
        values.update({name: str(value) for name, value in overrides.get(service.id, {}).items()})
        raw_own[service.id] = values
        declared = {var.name for var in service.env_for(stage) if var.type == "secret"}
        own_secret[service.id] = _secret_closure(values, declared)
    result: dict[str, set[str]] = {}
    for service in _services(spec):
        if service.id not in present:
            continue
        own = raw_own[service.id]
        imported: set[str] = set()
        for entry in service.imports:
            if entry.source not in present:
                continue
            for name in raw_own.get(entry.source, {}):
                if fnmatch.fnmatchcase(name, entry.pattern) and name in own_secret.get(entry.source, set()):
                    if (entry.rename or name) not in own:
                        imported.add(entry.rename or name)
        result[service.id] = _secret_closure(own, own_secret[service.id] | imported)
    return result
