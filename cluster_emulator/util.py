"""Small helpers shared by the emulator modules: copying, timestamps, names."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from datetime import UTC, datetime

# The alphabet Kubernetes uses for generated name suffixes and template hashes (no vowels, no 0/1/3).
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def clone(value):
    """Deep copy of JSON-like data; much cheaper than `copy.deepcopy`."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def now() -> str:
    """The current time as Kubernetes writes `metav1.Time`: RFC 3339, seconds, UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """The current time as `metav1.MicroTime`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def random_suffix(length: int = 5) -> str:
    """A random suffix as in generated pod names (`web-7d9f8b6c5d-x2k4p`)."""
    return "".join(secrets.choice(_SAFE_ALPHABET) for _ in range(length))


def safe_hash(data, length: int = 10) -> str:
    """A stable short hash of JSON-like data, in the alphabet of `pod-template-hash`."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    out = []
    while len(out) < length:
        number, rem = divmod(number, len(_SAFE_ALPHABET))
        out.append(_SAFE_ALPHABET[rem])
    return "".join(out)


def hex_digest(data: str, length: int = 64) -> str:
    return hashlib.sha256(data.encode()).hexdigest()[:length]


def dumps(value) -> bytes:
    """Compact JSON as the API server writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def labels_of(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def controller_of(obj: dict) -> dict | None:
    """The ownerReference marked `controller: true`, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: dict, *, controller: bool = True, block: bool = True) -> dict:
    m = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": m["name"],
        "uid": m["uid"],
        "controller": controller,
        "blockOwnerDeletion": block,
    }


def set_condition(
    conditions: list[dict],
    type_: str,
    status: str,
    reason: str | None = None,
    message: str | None = None,
    *,
    stamp: str | None = None,
    probe_times: bool = False,
    update_time: bool = False,
    extra: dict | None = None,
) -> list[dict]:
    """Return `conditions` with one condition set, keeping its lastTransitionTime unless the status flips."""
    stamp = stamp or now()
    out = []
    found = False
    for cond in conditions:
        if cond.get("type") != type_:
            out.append(cond)
            continue
        found = True
        new = dict(cond)
        if cond.get("status") != status:
            new["lastTransitionTime"] = stamp
        same_text = cond.get("reason") == reason and cond.get("message") == message
        if update_time and not same_text:
            new["lastUpdateTime"] = stamp
        _fill(new, status, reason, message, extra)
        out.append(new)
    if not found:
        new = {"type": type_}
        if probe_times:
            new["lastProbeTime"] = None
        if update_time:
            new["lastUpdateTime"] = stamp
        new["lastTransitionTime"] = stamp
        _fill(new, status, reason, message, extra)
        out.append(new)
    return out


def _fill(cond: dict, status: str, reason: str | None, message: str | None, extra: dict | None) -> None:
    cond["status"] = status
    for key, value in (("reason", reason), ("message", message)):
        if value is None:
            cond.pop(key, None)
        else:
            cond[key] = value
    if extra:
        cond.update(extra)


def condition(obj: dict, type_: str) -> dict | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == type_:
            return cond
    return None
