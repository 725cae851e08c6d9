"""Diploi's status format (`diploiStatusVersion: 1`): what an app's status URL answers. Pure.

    {"diploiStatusVersion": 1,
     "items": [{"identifier": "www", "name": "Next.js", "description": "…",
                "status": "green" | "yellow" | "red" | "gray",
                "message": "…", "isPending": false,
                "items": [ …the same shape, one level… ]}]}

`read_answer` turns what came back through the service proxy (status code, content
type, body, whether it was cut short) into the items, or into the reason the status
is unknown. Nothing an app sends can raise out of here: a bad answer is a reason.
docs/templates.md is the contract for template authors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

VERSION = 1
MAX_ITEMS = 50
MAX_IDENTIFIER = 100
MAX_NAME = 100
MAX_DESCRIPTION = 300
MAX_MESSAGE = 500
# The app's words for its colours. Grey ("not applicable", e.g. an optional feature not configured)
# is shown, and never changes the deployment's health.
COLOURS = {"green": "green", "yellow": "yellow", "red": "red", "gray": "grey", "grey": "grey"}


class BadReport(ValueError):
    """The answer is not Diploi's status format; the message says what is wrong, for a person."""


@dataclass(frozen=True)
class Answer:
    """A status URL's answer, read: the items, or why the status is unknown (``error``).

    ``unserved``: the API server found nothing to ask (no such Service, no ready endpoint behind
    it) or may not ask. The Services node (or the operator) says so already, so that silence does
    not count against the app. ``api_failed``: the API server itself failed (5xx, 429): the app was
    not asked at all, and what it last said stands."""

    items: tuple[dict, ...] = ()
    error: str = ""
    unserved: bool = False
    api_failed: bool = False


def read_answer(
    status: int, content_type: str, body: bytes, *, truncated: bool, max_bytes: int, timed_out: bool = False
) -> Answer:
    """What a status URL's answer says. Never raises."""
    if timed_out:
        return Answer(error="no answer in time")
    if 200 <= status < 300:
        if truncated:
            return Answer(error=f"the answer is larger than {max_bytes // 1024} KiB")
        try:
            return Answer(items=tuple(parse_report(body)))
        except BadReport as problem:
            return Answer(error=str(problem))
    refusal = _api_refusal(body)
    if refusal:
        # The API server's own answer. The pod not answering is the app's; no such Service (404), no
        # ready endpoint or no such port (503), or Diploi not allowed to ask (401/403) are not.
        if refusal.startswith("error trying to reach service"):
            return Answer(error=refusal)
        if status in (401, 403):
            return Answer(error=f"Diploi may not ask: {refusal}", unserved=True)
        if status == 404 or (status == 503 and refusal.startswith(("no endpoints available", "no service port"))):
            return Answer(error=refusal, unserved=True)
        return Answer(error=refusal, api_failed=True)
    if status == 0:
        return Answer(error="no answer")
    return Answer(error=f"the app answered {status}")


def _api_refusal(body: bytes) -> str:
    """The message of a Kubernetes `Status` body (the API server refusing to proxy), else ""."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, TypeError):
        return ""
    if isinstance(data, dict) and data.get("kind") == "Status" and isinstance(data.get("message"), str):
        return _clip(data["message"], MAX_MESSAGE)
    return ""


def parse_report(body: bytes) -> list[dict]:
    """The items of a status answer, flattened (a nested item's identifier is "parent/child"),
    each {identifier, name, description, status, message, pending}. Raises `BadReport`."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadReport("the answer is not UTF-8 text") from None
    except ValueError as error:
        raise BadReport(f"the answer is not JSON ({_clip(str(error), 80)})") from None
    if not isinstance(data, dict):
        raise BadReport(f"the answer is a JSON {_json_type(data)}, not an object with diploiStatusVersion and items")
    version = data.get("diploiStatusVersion")
    if version is None:
        raise BadReport("the answer has no diploiStatusVersion")
    if version != VERSION or isinstance(version, bool):
        raise BadReport(f"diploiStatusVersion is {_clip(json.dumps(version), 20)}; Diploi reads version {VERSION}")
    items = data.get("items")
    if not isinstance(items, list):
        raise BadReport(f"items is {'missing' if items is None else 'a JSON ' + _json_type(items)}, not a list")
    found: list[dict] = []
    for index, raw in enumerate(items):
        item = _item(raw, f"items[{index}]")
        found.append(item)
        children = raw.get("items")
        if children is None:
            continue
        if not isinstance(children, list):
            raise BadReport(f"items[{index}].items is a JSON {_json_type(children)}, not a list")
        for child_index, child in enumerate(children):
            nested = _item(child, f"items[{index}].items[{child_index}]")
            if isinstance(child, Mapping) and child.get("items") is not None:
                raise BadReport(f"items[{index}].items[{child_index}] has items: one level of nesting only")
            nested["identifier"] = f"{item['identifier']}/{nested['identifier']}"
            nested["name"] = f"{item['name']}: {nested['name']}"
            found.append(nested)
    if len(found) > MAX_ITEMS:
        raise BadReport(f"the answer has {len(found)} items; at most {MAX_ITEMS}")
    seen: set[str] = set()
    for item in found:
        if item["identifier"] in seen:
            raise BadReport(f"the identifier {item['identifier']!r} is used twice")
        seen.add(item["identifier"])
    return found


def _item(raw, where: str) -> dict:
    if not isinstance(raw, Mapping):
        raise BadReport(f"{where} is a JSON {_json_type(raw)}, not an object")
    identifier = raw.get("identifier")
    if not isinstance(identifier, str) or not identifier.strip():
        raise BadReport(f"{where} has no identifier")
    if len(identifier) > MAX_IDENTIFIER:
        raise BadReport(f"{where}.identifier is longer than {MAX_IDENTIFIER} characters")
    status = raw.get("status")
    if status is None:
        colour = "grey"
    elif isinstance(status, str) and status.lower() in COLOURS:
        colour = COLOURS[status.lower()]
    else:
        expected = "green, yellow, red or gray"
        raise BadReport(f"{where}.status is {_clip(json.dumps(status), 30)}; expected {expected}")
    texts = {}
    for key, limit in (("name", MAX_NAME), ("description", MAX_DESCRIPTION), ("message", MAX_MESSAGE)):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise BadReport(f"{where}.{key} is a JSON {_json_type(value)}, not a string")
        texts[key] = _clip(" ".join((value or "").split()), limit)
    pending = raw.get("isPending", False)
    if not isinstance(pending, bool):
        raise BadReport(f"{where}.isPending is a JSON {_json_type(pending)}, not true or false")
    return {
        "identifier": identifier.strip(),
        "name": texts["name"] or identifier.strip(),
        "description": texts["description"],
        "status": colour,
        "message": texts["message"],
        "pending": pending,
    }


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
