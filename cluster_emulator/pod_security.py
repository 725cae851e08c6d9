"""Pod Security Admission, as a real API server enforces it on Pods: a namespace labelled
``pod-security.kubernetes.io/enforce: baseline|restricted`` refuses pods that break the level
(403, ``violates PodSecurity "<level>:latest": …`` in the real server's words); without the
label, or with ``privileged``, anything goes. Workloads are admitted whatever their template:
their controllers' pod creations are refused (a ``FailedCreate`` event), as on a real cluster.

The checks are the Pod Security Standards' for the fields a pod can set; the label's version
(``enforce-version``) is read as ``latest``. Pure functions of the pod and the level.
"""

from __future__ import annotations

LABEL = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")

# What `baseline` lets a container add back (the container runtimes' defaults).
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
        "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip
RESTRICTED_VOLUME_TYPES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)


def enforced_level(namespace: dict | None) -> str:
    """The level a namespace enforces: ``privileged`` unless its label names another one."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(LABEL, "privileged")
    return level if level in LEVELS else "privileged"


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _containers(spec: dict) -> list[dict]:
    found = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        found += [c for c in spec.get(key) or () if isinstance(c, dict)]
    return found


def _quoted(names: list[str], word: str = "container") -> str:
    """``container "a"`` or ``containers "a", "b"``, as the real server lists them."""
    return (word if len(names) == 1 else f"{word}s") + " " + ", ".join(f'"{n}"' for n in names)


def _baseline(spec: dict, pod_context: dict) -> list[str]:
    found = []
    host = [f"{key}=true" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key) is True]
    if host:
        found.append(f"host namespaces ({', '.join(host)})")
    containers = _containers(spec)
    privileged = [c.get("name", "") for c in containers if _dict(c.get("securityContext")).get("privileged") is True]
    if privileged:
        found.append(f"privileged ({_quoted(privileged)} must not set securityContext.privileged=true)")
    added = []
    for c in containers:
        extra = [
            cap
            for cap in _dict(_dict(c.get("securityContext")).get("capabilities")).get("add") or ()
            if cap not in BASELINE_CAPABILITIES
        ]
        if extra:
            caps = ", ".join(f'"{cap}"' for cap in extra)
            added.append(f'container "{c.get("name", "")}" must not include {caps} in securityContext.capabilities.add')
    if added:
        found.append(f"non-default capabilities ({'; '.join(added)})")
    host_paths = [v.get("name", "") for v in spec.get("volumes") or () if isinstance(v, dict) and "hostPath" in v]
    if host_paths:
        found.append(f"hostPath volumes ({_quoted(host_paths, 'volume')})")
    host_ports = [
        (c.get("name", ""), p["hostPort"])
        for c in containers
        for p in c.get("ports") or ()
        if isinstance(p, dict) and p.get("hostPort")
    ]
    if host_ports:
        uses = "; ".join(f'container "{name}" uses hostPort {port}' for name, port in host_ports)
        found.append(f"hostPort ({uses})")
    for field, label in (("seccompProfile", "seccompProfile"), ("appArmorProfile", "appArmorProfile")):
        unconfined = []
        if _dict(pod_context.get(field)).get("type") == "Unconfined":
            unconfined.append("pod")
        unconfined += [
            f'container "{c.get("name", "")}"'
            for c in containers
            if _dict(_dict(c.get("securityContext")).get(field)).get("type") == "Unconfined"
        ]
        if unconfined:
            found.append(
                f'{label} ({" and ".join(unconfined)} must not set securityContext.{field}.type to "Unconfined")'
            )
    return found


def _restricted(spec: dict, pod_context: dict) -> list[str]:
    found = []
    containers = _containers(spec)
    restricted_volumes = []
    for volume in spec.get("volumes") or ():
        if not isinstance(volume, dict):
            continue
        kinds = [key for key in volume if key != "name" and key not in RESTRICTED_VOLUME_TYPES]
        restricted_volumes += [f'volume "{volume.get("name", "")}" uses restricted volume type "{k}"' for k in kinds]
    if restricted_volumes:
        found.append(f"restricted volume types ({'; '.join(restricted_volumes)})")
    escalating = [
        c.get("name", "")
        for c in containers
        if _dict(c.get("securityContext")).get("allowPrivilegeEscalation") is not False
    ]
    if escalating:
        found.append(
            f"allowPrivilegeEscalation != false ({_quoted(escalating)} must set "
            "securityContext.allowPrivilegeEscalation=false)"
        )
    not_dropping, adding = [], []
    for c in containers:
        capabilities = _dict(_dict(c.get("securityContext")).get("capabilities"))
        if "ALL" not in (capabilities.get("drop") or ()):
            not_dropping.append(c.get("name", ""))
        extra = [cap for cap in capabilities.get("add") or () if cap != "NET_BIND_SERVICE"]
        if extra:
            caps = ", ".join(f'"{cap}"' for cap in extra)
            adding.append(
                f'container "{c.get("name", "")}" must not include {caps} in securityContext.capabilities.add'
            )
    if not_dropping or adding:
        parts = [f'{_quoted(not_dropping)} must set securityContext.capabilities.drop=["ALL"]'] if not_dropping else []
        found.append(f"unrestricted capabilities ({'; '.join(parts + adding)})")
    pod_non_root = pod_context.get("runAsNonRoot")
    root_ok = [
        c.get("name", "")
        for c in containers
        if not (
            _dict(c.get("securityContext")).get("runAsNonRoot") is True
            or (pod_non_root is True and _dict(c.get("securityContext")).get("runAsNonRoot") is not False)
        )
    ]
    if pod_non_root is False or root_ok:
        found.append(
            "runAsNonRoot != true (pod or "
            + (
                f"{_quoted(root_ok)} must set securityContext.runAsNonRoot=true)"
                if root_ok
                else "pod must not set securityContext.runAsNonRoot=false)"
            )
        )
    as_root = ["pod"] if pod_context.get("runAsUser") == 0 else []
    as_root += [
        f'container "{c.get("name", "")}"' for c in containers if _dict(c.get("securityContext")).get("runAsUser") == 0
    ]
    if as_root:
        found.append(f"runAsUser=0 ({' and '.join(as_root)} must not set runAsUser=0)")
    pod_seccomp = _dict(pod_context.get("seccompProfile")).get("type")
    unset = [
        c.get("name", "")
        for c in containers
        if (_dict(_dict(c.get("securityContext")).get("seccompProfile")).get("type") or pod_seccomp)
        not in ("RuntimeDefault", "Localhost")
    ]
    if unset:
        found.append(
            f"seccompProfile (pod or {_quoted(unset)} must set securityContext.seccompProfile.type to "
            '"RuntimeDefault" or "Localhost")'
        )
    return found


def violations(pod: dict, level: str) -> list[str]:
    """What in ``pod`` breaks ``level`` (empty when nothing does, and always for ``privileged``)."""
    if level not in ("baseline", "restricted"):
        return []
    spec = _dict(pod.get("spec"))
    pod_context = _dict(spec.get("securityContext"))
    found = _baseline(spec, pod_context)
    if level == "restricted":
        found += _restricted(spec, pod_context)
    return found


def refusal(pod: dict, level: str) -> str | None:
    """The real server's reason for refusing ``pod`` in a namespace enforcing ``level``, or None."""
    found = violations(pod, level)
    return f'violates PodSecurity "{level}:latest": {", ".join(found)}' if found else None
