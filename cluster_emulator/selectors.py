"""Label and field selectors, in the syntax of the `labelSelector`/`fieldSelector` query parameters
and of `LabelSelector` objects (`matchLabels`, `matchExpressions`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .errors import bad_request

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_REQUIREMENT = re.compile(
    rf"^\s*(?:(?P<not>!)\s*(?P<nkey>{_KEY})"
    rf"|(?P<key>{_KEY})\s*(?:(?P<setop>in|notin)\s*\((?P<values>[^)]*)\)"
    rf"|(?P<op>==|=|!=|>|<)\s*(?P<value>[-A-Za-z0-9_.]*))?)\s*$"
)


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if not present:
            return False
        try:
            number, bound = int(value), int(self.values[0])
        except ValueError:
            return False
        return number > bound if self.op == ">" else number < bound


class LabelSelector:
    """A parsed label selector; the empty selector matches everything."""

    def __init__(self, requirements: tuple[Requirement, ...] = (), *, nothing: bool = False):
        self.requirements = requirements
        self.nothing = nothing  # a null LabelSelector object selects nothing

    def matches(self, labels: dict | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def equality_pairs(self) -> dict[str, str]:
        """The `key=value` requirements, usable as an index filter."""
        return {r.key: r.values[0] for r in self.requirements if r.op == "=" and len(r.values) == 1}


def _split(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse `a=b,c!=d,e in (x,y),!f,g`; raises a 400 ApiError when malformed."""
    if not text or not text.strip():
        return LabelSelector()
    requirements = []
    for part in _split(text):
        match = _REQUIREMENT.match(part)
        if not match:
            raise bad_request(f"unable to parse requirement: found '{part.strip()}', expected: valid requirement")
        if match.group("not"):
            requirements.append(Requirement(match.group("nkey"), "!"))
        elif match.group("setop"):
            values = tuple(v.strip() for v in match.group("values").split(",") if v.strip())
            requirements.append(Requirement(match.group("key"), match.group("setop"), values))
        elif match.group("op"):
            op = "=" if match.group("op") == "==" else match.group("op")
            requirements.append(Requirement(match.group("key"), op, (match.group("value"),)))
        else:
            requirements.append(Requirement(match.group("key"), "exists"))
    return LabelSelector(tuple(requirements))


def from_object(selector: dict | None) -> LabelSelector:
    """A `LabelSelector` object: null selects nothing, {} selects everything."""
    if selector is None:
        return LabelSelector(nothing=True)
    requirements = [Requirement(k, "=", (v,)) for k, v in (selector.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or ():
        requirements.append(Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ())))
    return LabelSelector(tuple(requirements))


def from_dict(labels: dict | None) -> LabelSelector:
    """An equality selector such as a Service's `spec.selector` or a fault's selector."""
    return LabelSelector(tuple(Requirement(k, "=", (v,)) for k, v in (labels or {}).items()))


# Field selectors: which fields each kind supports besides metadata.name/namespace, as real servers do.
_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "secrets": ("type",),
    "namespaces": ("status.phase",),
    "jobs.batch": ("status.successful",),
    "nodes": ("spec.unschedulable",),
    "replicasets.apps": ("status.replicas",),
    "persistentvolumeclaims": (),
}


def _field_value(obj: dict, path: str):
    if path == "source":
        return (obj.get("source") or {}).get("component", "")
    value = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_field_selector(text: str | None, resource_key: str) -> Callable[[dict], bool] | None:
    """A predicate for `fieldSelector`, None when absent; 400 for unsupported fields, like real servers."""
    if not text or not text.strip():
        return None
    allowed = ("metadata.name", "metadata.namespace") + _FIELDS.get(resource_key, ())
    terms = []
    for part in text.split(","):
        match = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = match.groups()
        if field not in allowed:
            raise bad_request(f'"{field}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        terms.append((field, op != "!=", value))

    def predicate(obj: dict) -> bool:
        return all((_field_value(obj, f) == v) == eq for f, eq, v in terms)

    predicate.names = [v for f, eq, v in terms if f == "metadata.name" and eq]  # type: ignore[attr-defined]
    return predicate
