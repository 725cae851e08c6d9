"""API errors, answered as `Status` objects the way the Kubernetes API server words them."""

from __future__ import annotations

from dataclasses import dataclass

from .resources import Resource

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error answer: HTTP `code` with a Status body."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: dict | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


@dataclass(frozen=True)
class Cause:
    """One field error of an Invalid answer: `field: <type>: <detail>`."""

    field: str
    reason: str  # FieldValueRequired, FieldValueInvalid, ...
    message: str  # "Required value", 'Invalid value: "x": why', ...

    def text(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def required(field: str, detail: str = "") -> Cause:
    return Cause(field, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def invalid(field: str, value, detail: str) -> Cause:
    return Cause(field, "FieldValueInvalid", f"Invalid value: {go_repr(value)}: {detail}")


def forbidden(field: str, detail: str) -> Cause:
    return Cause(field, "FieldValueForbidden", f"Forbidden: {detail}")


def duplicate(field: str, value) -> Cause:
    return Cause(field, "FieldValueDuplicate", f"Duplicate value: {go_repr(value)}")


def not_found_value(field: str, value) -> Cause:
    return Cause(field, "FieldValueNotFound", f"Not found: {go_repr(value)}")


def unsupported(field: str, value, supported: list[str]) -> Cause:
    allowed = ", ".join(f'"{s}"' for s in supported)
    return Cause(field, "FieldValueNotSupported", f"Unsupported value: {go_repr(value)}: supported values: {allowed}")


def too_long(field: str, limit: int) -> Cause:
    return Cause(field, "FieldValueTooLong", f"Too long: may not be more than {limit} bytes")


class GoValue(str):
    """A value already written as Go's `%#v` prints it, for typed values a field error shows as such."""


def go_strings(values) -> GoValue:
    """A `[]string` as Go prints it: `[]string{"10.96.0.10"}`, `[]string(nil)`."""
    if not values:
        return GoValue("[]string(nil)")
    return GoValue("[]string{" + ", ".join(go_repr(str(v)) for v in values) + "}")


def go_repr(value) -> str:
    """Render a value as Go's `%#v`-ish output used in field errors."""
    if isinstance(value, GoValue):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        inner = ", ".join(f'"{k}":{go_repr(v)}' for k, v in value.items())
        return f"map[string]string{{{inner}}}" if all(isinstance(v, str) for v in value.values()) else "{...}"
    if isinstance(value, list):
        return "[" + ", ".join(go_repr(v) for v in value) + "]"
    return str(value)


def invalid_object(resource: Resource, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid: `Deployment.apps "web" is invalid: <field errors>`."""
    texts = [c.text() for c in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return ApiError(
        422,
        f'{resource.qualified_kind} "{name}" is invalid: {joined}',
        "Invalid",
        {
            "name": name,
            "group": resource.group,
            "kind": resource.kind,
            "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes],
        },
    )


def _details(resource: Resource | None, name: str, **extra) -> dict:
    details = {"name": name}
    if resource is not None:
        if resource.group:
            details["group"] = resource.group
        details["kind"] = resource.plural
    details.update(extra)
    return details


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(404, f'{resource.group_resource} "{name}" not found', "NotFound", _details(resource, name))


def namespace_not_found(name: str) -> ApiError:
    return ApiError(404, f'namespaces "{name}" not found', "NotFound", {"name": name, "kind": "namespaces"})


def already_exists(resource: Resource, name: str) -> ApiError:
    return ApiError(
        409, f'{resource.group_resource} "{name}" already exists', "AlreadyExists", _details(resource, name)
    )


def conflict(resource: Resource, name: str, detail: str | None = None) -> ApiError:
    detail = detail or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {resource.group_resource} "{name}": {detail}',
        "Conflict",
        _details(resource, name),
    )


def forbidden_object(resource: Resource, name: str, detail: str, causes: list[dict] | None = None) -> ApiError:
    details = _details(resource, name)
    if causes:
        details["causes"] = causes
    return ApiError(403, f'{resource.group_resource} "{name}" is forbidden: {detail}', "Forbidden", details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "BadRequest")


def method_not_allowed() -> ApiError:
    return ApiError(405, "the server does not allow this method on the requested resource", "MethodNotAllowed", {})


def path_not_found() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", "NotFound", {})


def expired(message: str) -> ApiError:
    return ApiError(410, message, "Expired")


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
        "UnsupportedMediaType",
    )
