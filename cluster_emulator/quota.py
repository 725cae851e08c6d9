"""ResourceQuota admission of Pods, as a real API server does it: with a quota on CPU or memory in
the namespace, a pod must say how much it wants (after the namespace's LimitRange defaults) and
may not take the namespace past the quota (403, the real server's words). Pure functions of the
pod, the namespace's quotas, limit ranges and pods.

Tracked: ``pods``, ``requests.cpu``/``cpu``, ``requests.memory``/``memory``, ``limits.cpu``,
``limits.memory``. Pods in a terminal phase use nothing; terminating ones still count, as they do
on a real cluster until their grace period ends.
"""

from __future__ import annotations

from decimal import Decimal

from . import quantity

# quota key -> (resources field, resource name)
COMPUTE = {
    "requests.cpu": ("requests", "cpu"),
    "cpu": ("requests", "cpu"),
    "requests.memory": ("requests", "memory"),
    "memory": ("requests", "memory"),
    "limits.cpu": ("limits", "cpu"),
    "limits.memory": ("limits", "memory"),
}


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _amount(value) -> Decimal | None:
    try:
        return quantity.parse(value)[0]
    except quantity.QuantityError:
        return None


def _container_defaults(limit_ranges: list[dict]) -> tuple[dict, dict]:
    """What LimitRanger fills in for a container without resources: (limits, requests)."""
    limits: dict = {}
    requests: dict = {}
    for limit_range in limit_ranges:
        for item in _dict(limit_range.get("spec")).get("limits") or ():
            if _dict(item).get("type") != "Container":
                continue
            for name, value in _dict(item.get("default")).items():
                limits.setdefault(name, value)
            for name, value in _dict(item.get("defaultRequest") or item.get("default")).items():
                requests.setdefault(name, value)
    return limits, requests


def _container_value(container: dict, field: str, name: str, defaults: tuple[dict, dict]) -> Decimal | None:
    resources = _dict(container.get("resources"))
    value = _dict(resources.get(field)).get(name)
    if value is None and field == "requests":  # a limit alone is the request too
        value = _dict(resources.get("limits")).get(name)
    if value is None:
        default_limits, default_requests = defaults
        value = (default_requests if field == "requests" else default_limits).get(name)
    return None if value is None else _amount(value)


def _pod_value(spec: dict, field: str, name: str, defaults) -> tuple[Decimal, list[str]]:
    """The pod's effective amount (its containers and sidecars together, or its largest init
    container) and the containers that name none."""
    missing: list[str] = []

    def value(container: dict) -> Decimal:
        amount = _container_value(container, field, name, defaults)
        if amount is None:
            missing.append(container.get("name", ""))
            return Decimal(0)
        return amount

    inits = [c for c in spec.get("initContainers") or () if isinstance(c, dict)]
    sidecars = [c for c in inits if c.get("restartPolicy") == "Always"]
    running = sum(
        (value(c) for c in [*sidecars, *(c for c in spec.get("containers") or () if isinstance(c, dict))]), Decimal(0)
    )
    first = max((value(c) for c in inits if c not in sidecars), default=Decimal(0))
    return max(running, first), missing


def usage(pod: dict, keys, defaults) -> tuple[dict[str, Decimal], dict[str, list[str]]]:
    spec = _dict(pod.get("spec"))
    used: dict[str, Decimal] = {}
    missing: dict[str, list[str]] = {}
    for key in keys:
        if key == "pods":
            used[key] = Decimal(1)
        elif key in COMPUTE:
            used[key], missing[key] = _pod_value(spec, *COMPUTE[key], defaults)
    return used, missing


def _listed(amounts: dict, keys: list[str]) -> str:
    return ",".join(f"{key}={quantity.canonical(str(amounts[key]))}" for key in keys)


def _counts(pod: dict) -> bool:
    return _dict(pod.get("status")).get("phase") not in ("Succeeded", "Failed")


def refusal(pod: dict, *, quotas: list[dict], limit_ranges: list[dict], pods: list[dict]) -> str | None:
    """Why a real server would refuse to create ``pod`` beside ``pods``, or None."""
    defaults = _container_defaults(limit_ranges)
    for quota in sorted(quotas, key=lambda q: q["metadata"]["name"]):
        name = quota["metadata"]["name"]
        hard = {
            k: _amount(v) for k, v in _dict(_dict(quota.get("spec")).get("hard")).items() if k in COMPUTE or k == "pods"
        }
        hard = {k: v for k, v in hard.items() if v is not None}
        if not hard:
            continue
        wanted, missing = usage(pod, hard, defaults)
        unnamed = [f"{key} for: {','.join(names)}" for key, names in sorted(missing.items()) if names]
        if unnamed:
            return f"failed quota: {name}: must specify {'; '.join(unnamed)}"
        used = dict.fromkeys(hard, Decimal(0))
        for other in pods:
            if _counts(other):
                for key, amount in usage(other, hard, defaults)[0].items():
                    used[key] += amount
        over = sorted(key for key in hard if used[key] + wanted[key] > hard[key])
        if over:
            return (
                f"exceeded quota: {name}, requested: {_listed(wanted, over)}, used: {_listed(used, over)}, "
                f"limited: {_listed(hard, over)}"
            )
    return None
