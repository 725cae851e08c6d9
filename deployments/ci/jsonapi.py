"""The plumbing of Diploi's small JSON endpoints: errors as ``{"error": …}`` with a 4xx status,
a bounded JSON object body, and no input that can reach the database unchecked."""

from __future__ import annotations

import json
from functools import wraps

from django.http import JsonResponse

MAX_BODY_BYTES = 64 * 1024


class ApiError(Exception):
    """Ends a request with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def error_response(status: int, message: str, **extra) -> JsonResponse:
    response = JsonResponse({"error": message, **extra}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="diploi"'
    return response


def json_endpoint(*methods: str):
    """A view answering JSON: other methods get 405, an `ApiError` its status and message."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = error_response(405, f"Use {' or '.join(methods)}.")
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except ApiError as error:
                return error_response(error.status, error.message, **error.extra)

        return wrapper

    return decorate


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def json_object(body: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> dict:
    """The body as a JSON object, or an `ApiError` (400/413) saying what is wrong with it."""
    if len(body) > max_bytes:
        raise ApiError(413, f"The body is larger than {max_bytes} bytes.")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "The body must be a JSON object (UTF-8).") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The body must be a JSON object.")
    if _has_nul(data):
        raise ApiError(400, "Values may not contain NUL characters (\\u0000).")
    return data


def text_field(data: dict, name: str, *, max_length: int, required: bool = True) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError(400, f"“{name}” must be a string.", field=name)
    value = value.strip()
    if required and not value:
        raise ApiError(400, f"“{name}” is required.", field=name)
    if len(value) > max_length:
        raise ApiError(400, f"“{name}” must be at most {max_length} characters.", field=name)
    return value


def int_field(data: dict, name: str, *, minimum: int, maximum: int) -> int:
    value = data.get(name)
    # bool is an int in Python; true is no step number.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, f"“{name}” must be an integer.", field=name)
    if not minimum <= value <= maximum:
        raise ApiError(400, f"“{name}” must be between {minimum} and {maximum}.", field=name)
    return value
