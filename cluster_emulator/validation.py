"""Validation of written objects: the OpenAPI schema (strict: unknown fields are
rejected), then the checks a real API server makes that the schema cannot express
(names, labels, selectors matching templates, immutable fields, ...).

`validate()` raises a 422 Invalid ApiError listing every field error found.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re

import jsonschema

from . import errors, quantity, schema
from .errors import Cause, duplicate, forbidden, invalid, not_found_value, required, unsupported
from .resources import (
    CERTIFICATES,
    CONFIGMAPS,
    DEPLOYMENTS,
    ENDPOINTSLICES,
    INGRESSES,
    JOBS,
    NAMESPACES,
    NETWORKPOLICIES,
    PODS,
    PVCS,
    REPLICASETS,
    SECRETS,
    SERVICES,
    STATEFULSETS,
    Resource,
)
from .selectors import from_object

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_WILDCARD_SUBDOMAIN = re.compile(r"^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IPV4 = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_PORT_NAME = re.compile(r"^[-a-z0-9]+$")

MSG_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
MSG_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
MSG_WILDCARD = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must "
    "consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. "
    "'*.example.com', regex used for validation is "
    "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
MSG_DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
MSG_QUALIFIED = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation "
    "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
MSG_LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
MSG_CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
    "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
MSG_POD_UPDATE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
    "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
    "previously negative)"
)
MSG_STS_UPDATE = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
    "'minReadySeconds' are forbidden"
)
_STS_MUTABLE = {
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
}
_MAX_CAUSES = 20


def validate(
    resource: Resource, obj: dict, old: dict | None = None, *, full: bool = False, schema_only: bool = False
) -> None:
    """Raise 422 Invalid if `obj` (about to be stored, replacing `old`) is not acceptable.
    Server-owned parts (status of kinds with a status subresource, managedFields) are only
    checked when `full`; the semantic checks run once the schema is satisfied."""
    causes = schema_causes(resource, obj if full else _client_view(resource, obj))
    if not causes and not schema_only:
        causes = semantic_causes(resource, obj, old)
    if causes:
        name = (obj.get("metadata") or {}).get("name") or ""
        raise errors.invalid_object(resource, name, causes[:_MAX_CAUSES])


def _client_view(resource: Resource, obj: dict) -> dict:
    view = {k: v for k, v in obj.items() if not (k == "status" and resource.status_subresource)}
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        view["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return view


# -- schema ----------------------------------------------------------------------------------------------


def schema_causes(resource: Resource, obj: dict) -> list[Cause]:
    validator = schema.validator(resource)
    if validator is None:
        return _certificate_shape(obj) if resource is CERTIFICATES else []
    causes = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]):
        causes.extend(_schema_error_causes(error))
        if len(causes) >= _MAX_CAUSES:
            break
    return causes


def field_path(parts) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _schema_error_causes(error: jsonschema.ValidationError) -> list[Cause]:
    base = list(error.absolute_path)
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        return [required(field_path(base + [name])) for name in missing] or [required(field_path(base))]
    if error.validator == "additionalProperties":
        known = set(error.schema.get("properties") or {})
        unknown = [k for k in error.instance if k not in known] if isinstance(error.instance, dict) else []
        return [
            Cause(
                field_path(base + [k]),
                "FieldValueInvalid",
                f'Invalid value: unknown field "{field_path(base + [k])}": field not declared in schema',
            )
            for k in unknown
        ] or [Cause(field_path(base), "FieldValueInvalid", error.message)]
    if error.validator == "enum":
        return [unsupported(field_path(base), error.instance, [str(v) for v in error.validator_value])]
    return [
        invalid(
            field_path(base), error.instance if not isinstance(error.instance, (dict, list)) else "{...}", error.message
        )
    ]


def _certificate_shape(obj: dict) -> list[Cause]:
    """cert-manager's CRD schema is not in the core OpenAPI: check the essentials of its shape."""
    causes = []
    known_top = {"apiVersion", "kind", "metadata", "spec", "status"}
    for key in obj:
        if key not in known_top:
            causes.append(Cause(key, "FieldValueInvalid", f'Invalid value: unknown field "{key}"'))
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return causes + [required("spec")]
    if not isinstance(spec.get("secretName"), str) or not spec.get("secretName"):
        causes.append(required("spec.secretName"))
    issuer = spec.get("issuerRef")
    if not isinstance(issuer, dict) or not issuer.get("name"):
        causes.append(required("spec.issuerRef.name"))
    names = spec.get("dnsNames")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        causes.append(invalid("spec.dnsNames", "{...}", "must be a list of strings"))
    if not names and not spec.get("commonName") and not spec.get("ipAddresses") and not spec.get("uris"):
        causes.append(
            required("spec", "at least one of commonName, dnsNames, uris ipAddresses, or emailAddresses must be set")
        )
    return causes


# -- semantic checks -------------------------------------------------------------------------------------


def name_causes(resource: Resource, name: str, field: str = "metadata.name") -> list[Cause]:
    if not name:
        return [required(field, "name or generateName is required")]
    rule = resource.name_rule
    if rule == "label":
        regex, message, limit = _DNS1123_LABEL, MSG_LABEL, 63
    elif rule == "dns1035":
        regex, message, limit = _DNS1035_LABEL, MSG_DNS1035, 63
    else:
        regex, message, limit = _DNS1123_SUBDOMAIN, MSG_SUBDOMAIN, 253
    causes = []
    if len(name) > limit:
        causes.append(invalid(field, name, f"must be no more than {limit} characters"))
    if not regex.match(name):
        causes.append(invalid(field, name, message))
    return causes


def qualified_name_causes(key: str, field: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    causes = []
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        causes.append(invalid(field, key, "prefix part " + MSG_SUBDOMAIN))
    if not name:
        causes.append(invalid(field, key, "name part must be non-empty"))
    elif len(name) > 63:
        causes.append(invalid(field, key, "name part must be no more than 63 characters"))
    elif not _QUALIFIED_NAME.match(name):
        causes.append(invalid(field, key, MSG_QUALIFIED))
    return causes


def labels_causes(labels, field: str) -> list[Cause]:
    causes = []
    for key, value in (labels or {}).items():
        causes += qualified_name_causes(key, field)
        if not isinstance(value, str):
            continue
        if len(value) > 63:
            causes.append(invalid(f"{field}", value, "must be no more than 63 characters"))
        elif not _LABEL_VALUE.match(value):
            causes.append(invalid(f"{field}", value, MSG_LABEL_VALUE))
    return causes


def _metadata_causes(resource: Resource, meta: dict, field: str = "metadata") -> list[Cause]:
    causes = labels_causes(meta.get("labels"), f"{field}.labels")
    annotations = meta.get("annotations") or {}
    for key in annotations:
        causes += qualified_name_causes(key.lower(), f"{field}.annotations")
    if sum(len(k) + len(str(v)) for k, v in annotations.items()) > 262144:
        causes.append(Cause(f"{field}.annotations", "FieldValueTooLong", "Too long: must have at most 262144 bytes"))
    return causes


def semantic_causes(resource: Resource, obj: dict, old: dict | None) -> list[Cause]:
    meta = obj.get("metadata") or {}
    causes = name_causes(resource, meta.get("name") or "")
    if resource is JOBS and len(meta.get("name") or "") > 63:
        causes.append(invalid("metadata.name", meta["name"], "must be no more than 63 characters"))
    causes += _metadata_causes(resource, meta)
    if old is not None and (old.get("metadata") or {}).get("deletionTimestamp"):
        added = set(meta.get("finalizers") or ()) - set(old["metadata"].get("finalizers") or ())
        if added:
            causes.append(
                forbidden("metadata.finalizers", "no new finalizers can be added if the object is being deleted")
            )
    checker = _CHECKS.get(resource.key)
    if checker is not None:
        causes += checker(obj, old)
    return causes


def _pod_spec_causes(
    spec: dict, field: str, *, extra_volumes: set[str] = frozenset(), restart_policies: tuple[str, ...] | None = None
) -> list[Cause]:
    causes: list[Cause] = []
    containers = spec.get("containers") or []
    if not containers:
        causes.append(required(f"{field}.containers"))
    volume_names: set[str] = set()
    for i, volume in enumerate(spec.get("volumes") or ()):
        name = volume.get("name", "")
        vfield = f"{field}.volumes[{i}].name"
        if name in volume_names:
            causes.append(duplicate(vfield, name))
        elif name and not _DNS1123_LABEL.match(name):
            causes.append(invalid(vfield, name, MSG_LABEL))
        volume_names.add(name)
    mountable = volume_names | set(extra_volumes)
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or ()):
            causes += _container_causes(container, f"{field}.{group}[{i}]", seen, mountable)
    policy = spec.get("restartPolicy")
    if restart_policies is not None and policy not in restart_policies:
        if len(restart_policies) == 1:
            causes.append(unsupported(f"{field}.restartPolicy", policy, list(restart_policies)))
        else:
            causes.append(
                required(f"{field}.restartPolicy", "valid values: " + ", ".join(f'"{p}"' for p in restart_policies))
            )
    return causes


def _container_causes(container: dict, field: str, seen: set[str], volumes: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    name = container.get("name") or ""
    if name:
        if name in seen:
            causes.append(duplicate(f"{field}.name", name))
        elif not _DNS1123_LABEL.match(name) or len(name) > 63:
            causes.append(invalid(f"{field}.name", name, MSG_LABEL))
        seen.add(name)
    if not container.get("image"):
        causes.append(required(f"{field}.image"))
    port_names: set[str] = set()
    for j, port in enumerate(container.get("ports") or ()):
        number = port.get("containerPort")
        if isinstance(number, int) and not 1 <= number <= 65535:
            causes.append(
                invalid(f"{field}.ports[{j}].containerPort", number, "must be between 1 and 65535, inclusive")
            )
        pname = port.get("name")
        if pname:
            causes += _port_name_causes(pname, f"{field}.ports[{j}].name")
            if pname in port_names:
                causes.append(duplicate(f"{field}.ports[{j}].name", pname))
            port_names.add(pname)
    for j, env in enumerate(container.get("env") or ()):
        env_name = env.get("name") or ""
        if not env_name:
            continue
        if "=" in env_name or not env_name.isprintable() or not env_name.isascii():
            causes.append(
                invalid(
                    f"{field}.env[{j}].name",
                    env_name,
                    "a valid environment variable name must consist only of printable ASCII characters other than '='",
                )
            )
    mount_paths: set[str] = set()
    for j, mount in enumerate(container.get("volumeMounts") or ()):
        if mount.get("name") and mount["name"] not in volumes:
            causes.append(not_found_value(f"{field}.volumeMounts[{j}].name", mount["name"]))
        path = mount.get("mountPath")
        if path in mount_paths:
            causes.append(invalid(f"{field}.volumeMounts[{j}].mountPath", path, "must be unique"))
        mount_paths.add(path)
    resources = container.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    for resource_name, request in requests.items():
        if resource_name in limits:
            try:
                too_big = quantity.to_float(request) > quantity.to_float(limits[resource_name])
            except quantity.QuantityError:
                continue
            if too_big:
                causes.append(
                    invalid(
                        f"{field}.resources.requests",
                        request,
                        f"must be less than or equal to {resource_name} limit of {limits[resource_name]}",
                    )
                )
    return causes


def _port_name_causes(name: str, field: str) -> list[Cause]:
    if len(name) > 15:
        return [invalid(field, name, "must be no more than 15 characters")]
    if not _PORT_NAME.match(name) or not re.search("[a-z]", name) or "--" in name or name[0] == "-" or name[-1] == "-":
        return [
            invalid(
                field,
                name,
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-); "
                "must contain at least one letter (a-z); hyphens (-) cannot be adjacent to "
                "other hyphens (-); and hyphens (-) cannot be the first or last character",
            )
        ]
    return []


def _pod(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = _pod_spec_causes(spec, "spec")
    if old is not None:
        causes += _pod_update_causes(old.get("spec") or {}, spec)
    return causes


def _pod_update_causes(old: dict, new: dict) -> list[Cause]:
    def masked(spec: dict) -> dict:
        spec = dict(spec)
        for group in ("containers", "initContainers"):
            spec[group] = [{k: v for k, v in c.items() if k != "image"} for c in spec.get(group) or ()]
        for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
            spec.pop(key, None)
        if not old.get("nodeName"):
            spec.pop("nodeName", None)
        return spec

    if masked(old) != masked(new):
        return [forbidden("spec", MSG_POD_UPDATE)]
    return []


def _template_causes(obj: dict, old: dict | None, resource: Resource) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        causes.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    selector = spec.get("selector")
    template = spec.get("template") or {}
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    if resource is not JOBS or spec.get("manualSelector"):
        if selector is None:
            causes.append(required("spec.selector"))
        elif not selector.get("matchLabels") and not selector.get("matchExpressions"):
            causes.append(invalid("spec.selector", "{...}", f"empty selector is invalid for {resource.singular}"))
        elif not from_object(selector).matches(template_labels):
            causes.append(
                invalid("spec.template.metadata.labels", template_labels, "`selector` does not match template `labels`")
            )
    causes += labels_causes(template_labels, "spec.template.metadata.labels")
    claim_names = {c.get("metadata", {}).get("name", "") for c in spec.get("volumeClaimTemplates") or ()}
    policies = ("OnFailure", "Never") if resource is JOBS else ("Always",)
    causes += _pod_spec_causes(
        template.get("spec") or {}, "spec.template.spec", extra_volumes=claim_names, restart_policies=policies
    )
    if resource is STATEFULSETS:
        for i, claim in enumerate(spec.get("volumeClaimTemplates") or ()):
            causes += _claim_spec_causes(claim.get("spec") or {}, f"spec.volumeClaimTemplates[{i}].spec")
    if old is not None:
        old_spec = old.get("spec") or {}
        if resource in (DEPLOYMENTS, REPLICASETS, JOBS) and old_spec.get("selector") != spec.get("selector"):
            causes.append(invalid("spec.selector", "{...}", "field is immutable"))
        if resource is STATEFULSETS:
            changed = {k for k in set(spec) | set(old_spec) if spec.get(k) != old_spec.get(k)} - _STS_MUTABLE
            if changed:
                causes.append(forbidden("spec", MSG_STS_UPDATE))
        if resource is JOBS and old_spec.get("template") != spec.get("template") and not old_spec.get("suspend"):
            causes.append(invalid("spec.template", "{...}", "field is immutable"))
        if resource is JOBS and old_spec.get("completions") != spec.get("completions"):
            causes.append(invalid("spec.completions", spec.get("completions"), "field is immutable"))
    return causes


def _deployment(obj, old):
    return _template_causes(obj, old, DEPLOYMENTS)


def _replicaset(obj, old):
    return _template_causes(obj, old, REPLICASETS)


def _statefulset(obj, old):
    return _template_causes(obj, old, STATEFULSETS)


def _job(obj, old):
    return _template_causes(obj, old, JOBS)


def _claim_spec_causes(spec: dict, field: str) -> list[Cause]:
    causes = []
    if not spec.get("accessModes"):
        causes.append(required(f"{field}.accessModes", "at least 1 access mode is required"))
    if "storage" not in ((spec.get("resources") or {}).get("requests") or {}):
        causes.append(required(f"{field}.resources[storage]"))
    return causes


def _pvc(obj, old):
    spec = obj.get("spec") or {}
    causes = _claim_spec_causes(spec, "spec")
    if old is not None:
        old_spec = old.get("spec") or {}

        def masked(s):
            s = {k: v for k, v in s.items() if k not in ("resources", "volumeAttributesClassName", "volumeName")}
            return s

        if masked(old_spec) != masked(spec):
            causes.append(
                forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests and "
                    "volumeAttributesClassName for bound claims",
                )
            )
        before = ((old_spec.get("resources") or {}).get("requests") or {}).get("storage")
        after = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        try:
            shrinking = before and after and quantity.to_float(after) < quantity.to_float(before)
        except quantity.QuantityError:
            shrinking = False
        if shrinking:
            causes.append(forbidden("spec.resources.requests.storage", "field can not be less than previous value"))
    return causes


def _service(obj, old):
    spec = obj.get("spec") or {}
    causes = []
    kind = spec.get("type", "ClusterIP")
    ports = spec.get("ports") or []
    if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
        causes.append(required("spec.ports"))
    names, numbers = set(), set()
    for i, port in enumerate(ports):
        name = port.get("name")
        if len(ports) > 1 and not name:
            causes.append(required(f"spec.ports[{i}].name"))
        if name:
            if name in names:
                causes.append(duplicate(f"spec.ports[{i}].name", name))
            elif not _DNS1123_LABEL.match(name):
                causes.append(invalid(f"spec.ports[{i}].name", name, MSG_LABEL))
            names.add(name)
        key = (port.get("port"), port.get("protocol", "TCP"))
        if key in numbers:
            causes.append(duplicate(f"spec.ports[{i}]", "{...}"))
        numbers.add(key)
        number = port.get("port")
        if isinstance(number, int) and not 1 <= number <= 65535:
            causes.append(invalid(f"spec.ports[{i}].port", number, "must be between 1 and 65535, inclusive"))
    if kind not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(unsupported("spec.type", kind, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]))
    if old is not None:
        causes += _cluster_ip_update_causes(old.get("spec") or {}, spec)
    return causes


def _cluster_ip_update_causes(old_spec: dict, spec: dict) -> list[Cause]:
    """A Service's cluster IPs may not change once set, `None` (headless) included, as the real server
    refuses after it normalised the singular and plural fields (a changed `clusterIP` with `clusterIPs`
    left as they were means the new IP alone)."""
    if "ExternalName" in (old_spec.get("type"), spec.get("type")):
        return []
    old_ip, old_ips = old_spec.get("clusterIP"), old_spec.get("clusterIPs") or []
    new_ip, new_ips = spec.get("clusterIP"), spec.get("clusterIPs") or []
    if not new_ip or new_ip == old_ip:
        return []  # omitted or cleared: the allocated IPs are kept (`Registry._carry_over`)
    if new_ips == old_ips:
        new_ips = [new_ip]
    if old_ips == ["None"] and new_ips == ["None"]:
        return []
    if len(new_ips) == len(old_ips):
        return [
            invalid(f"spec.clusterIPs[{i}]", errors.go_strings(new_ips), "may not change once set")
            for i, ip in enumerate(old_ips)
            if new_ips[i] != ip
        ]
    if not new_ips:
        return [invalid("spec.clusterIPs[0]", errors.go_strings(new_ips), "primary clusterIP can not be unset")]
    if new_ips[0] != old_ips[0]:
        return [invalid("spec.clusterIPs[0]", errors.go_strings(new_ips), "may not change once set")]
    return []


def _secret(obj, old):
    causes = _data_key_causes(obj, ("data",))
    total = 0
    for key, value in (obj.get("data") or {}).items():
        try:
            total += len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError, TypeError):
            causes.append(invalid(f"data[{key}]", "<secret contents redacted>", "illegal base64 data"))
    if total > 1048576:
        causes.append(Cause("data", "FieldValueTooLong", "Too long: must have at most 1048576 bytes"))
    if obj.get("type") == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in (obj.get("data") or {}):
                causes.append(required(f"data[{key}]"))
    return causes + _immutable_data_causes(obj, old, ("data", "type"))


def _configmap(obj, old):
    causes = _data_key_causes(obj, ("data", "binaryData"))
    both = set(obj.get("data") or {}) & set(obj.get("binaryData") or {})
    for key in both:
        causes.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    size = sum(len(k) + len(str(v)) for k, v in (obj.get("data") or {}).items())
    if size > 1048576:
        causes.append(Cause("data", "FieldValueTooLong", "Too long: must have at most 1048576 bytes"))
    return causes + _immutable_data_causes(obj, old, ("data", "binaryData"))


def _data_key_causes(obj: dict, fields: tuple[str, ...]) -> list[Cause]:
    causes = []
    for field in fields:
        for key in obj.get(field) or {}:
            if len(key) > 253 or not _CONFIG_KEY.match(key):
                causes.append(invalid(f"{field}[{key}]", key, MSG_CONFIG_KEY))
    return causes


def _immutable_data_causes(obj: dict, old: dict | None, fields: tuple[str, ...]) -> list[Cause]:
    if old is None or not old.get("immutable"):
        return []
    causes = []
    for field in fields:
        if obj.get(field) != old.get(field):
            causes.append(forbidden(field, "field is immutable when `immutable` is set"))
    if not obj.get("immutable"):
        causes.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    return causes


def host_causes(host: str, field: str) -> list[Cause]:
    """An Ingress host as the real server checks it: a DNS-1123 subdomain (a trailing dot is not one),
    or a wildcard ``*.`` subdomain; never an IP address."""
    if _IPV4.match(host) or ":" in host:
        return [invalid(field, host, "must be a DNS name, not an IP address")]
    causes = []
    if len(host) > 253:
        causes.append(invalid(field, host, "must be no more than 253 characters"))
    if "*" in host:
        if not _WILDCARD_SUBDOMAIN.match(host):
            causes.append(invalid(field, host, MSG_WILDCARD))
    elif not _DNS1123_SUBDOMAIN.match(host):
        causes.append(invalid(field, host, MSG_SUBDOMAIN))
    return causes


def _backend_causes(backend: dict, field: str) -> list[Cause]:
    service = (backend or {}).get("service")
    if not service:
        return []
    causes = []
    name = service.get("name", "")
    if not _DNS1035_LABEL.match(name) or len(name) > 63:
        causes.append(invalid(f"{field}.service.name", name, MSG_DNS1035))
    number = (service.get("port") or {}).get("number")
    if isinstance(number, int) and not 1 <= number <= 65535:
        causes.append(invalid(f"{field}.service.port.number", number, "must be between 1 and 65535, inclusive"))
    return causes


def _ingress(obj, old):
    causes = []
    spec = obj.get("spec") or {}
    for i, entry in enumerate(spec.get("tls") or ()):
        for j, host in enumerate(entry.get("hosts") or ()):
            causes += host_causes(host, f"spec.tls[{i}].hosts[{j}]")
        secret = entry.get("secretName")
        if secret and not _DNS1123_SUBDOMAIN.match(secret):
            causes.append(invalid(f"spec.tls[{i}].secretName", secret, MSG_SUBDOMAIN))
    for i, rule in enumerate(spec.get("rules") or ()):
        if rule.get("host"):
            causes += host_causes(rule["host"], f"spec.rules[{i}].host")
        for j, path in enumerate((rule.get("http") or {}).get("paths") or ()):
            causes += _backend_causes(path.get("backend"), f"spec.rules[{i}].http.paths[{j}].backend")
            field = f"spec.rules[{i}].http.paths[{j}]"
            kind = path.get("pathType")
            if kind is None:
                causes.append(required(f"{field}.pathType", "pathType must be specified"))
            elif kind not in ("Exact", "Prefix", "ImplementationSpecific"):
                causes.append(unsupported(f"{field}.pathType", kind, ["Exact", "ImplementationSpecific", "Prefix"]))
            elif kind in ("Exact", "Prefix") and not str(path.get("path", "")).startswith("/"):
                causes.append(invalid(f"{field}.path", path.get("path", ""), "must be an absolute path"))
    return causes


def _namespace(obj, old):
    return []


def _network_policy(obj, old):
    causes = []
    spec = obj.get("spec") or {}
    for direction in ("ingress", "egress"):
        for i, rule in enumerate(spec.get(direction) or ()):
            for j, port in enumerate(rule.get("ports") or ()):
                number = port.get("port")
                field = f"spec.{direction}[{i}].ports[{j}].port"
                if isinstance(number, int) and not 1 <= number <= 65535:
                    causes.append(invalid(field, number, "must be between 1 and 65535, inclusive"))
                elif isinstance(number, str) and not _PORT_NAME.match(number):
                    causes += _port_name_causes(number, field)
    return causes


_ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
_SLICE_PROTOCOLS = ("SCTP", "TCP", "UDP")


def _too_many(field: str, count: int, limit: int) -> Cause:
    return Cause(field, "FieldValueTooMany", f"Too many: {count}: must have at most {limit} items")


def _endpoint_slice(obj, old):
    """pkg/apis/discovery/validation: the address type (immutable), each endpoint's addresses, the ports."""
    causes = []
    kind = obj.get("addressType")
    if not kind:
        causes.append(required("addressType"))
    elif kind not in _ADDRESS_TYPES:
        causes.append(unsupported("addressType", kind, list(_ADDRESS_TYPES)))
    if old is not None and old.get("addressType") != kind:
        causes.append(invalid("addressType", kind, "field is immutable"))
    endpoints = obj.get("endpoints") or []
    if len(endpoints) > 1000:
        causes.append(
            Cause("endpoints", "FieldValueTooMany", f"Too many: {len(endpoints)}: must have at most 1000 items")
        )
    for i, endpoint in enumerate(endpoints):
        field = f"endpoints[{i}].addresses"
        addresses = endpoint.get("addresses") or []
        if not addresses:
            causes.append(required(field, "must contain at least 1 address"))
        elif len(addresses) > 100:
            causes.append(_too_many(field, len(addresses), 100))
        for j, address in enumerate(addresses):
            if kind in ("IPv4", "IPv6"):
                try:
                    parsed = ipaddress.ip_address(address)
                except ValueError:
                    parsed = None
                if parsed is None or parsed.version != int(kind[-1]):
                    causes.append(invalid(f"{field}[{j}]", address, f"must be a valid {kind} address"))
    ports = obj.get("ports") or []
    if len(ports) > 100:
        causes.append(_too_many("ports", len(ports), 100))
    names = set()
    for i, port in enumerate(ports):
        name = port.get("name") or ""
        if name and not _DNS1123_LABEL.match(name):
            causes.append(invalid(f"ports[{i}].name", name, MSG_LABEL))
        elif name in names:
            causes.append(duplicate(f"ports[{i}].name", name))
        names.add(name)
        protocol = port.get("protocol")
        if protocol is None:
            causes.append(required(f"ports[{i}].protocol"))
        elif protocol not in _SLICE_PROTOCOLS:
            causes.append(unsupported(f"ports[{i}].protocol", protocol, list(_SLICE_PROTOCOLS)))
        number = port.get("port")
        if isinstance(number, int) and not 1 <= number <= 65535:
            causes.append(invalid(f"ports[{i}].port", number, "must be between 1 and 65535, inclusive"))
    return causes


_CHECKS = {
    PODS.key: _pod,
    DEPLOYMENTS.key: _deployment,
    REPLICASETS.key: _replicaset,
    STATEFULSETS.key: _statefulset,
    JOBS.key: _job,
    PVCS.key: _pvc,
    SERVICES.key: _service,
    SECRETS.key: _secret,
    CONFIGMAPS.key: _configmap,
    INGRESSES.key: _ingress,
    NAMESPACES.key: _namespace,
    NETWORKPOLICIES.key: _network_policy,
    ENDPOINTSLICES.key: _endpoint_slice,
}
