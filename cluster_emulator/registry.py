"""API semantics on top of the store: what happens on create, update, patch, apply and delete.

Shared by the HTTP handlers and the simulated controllers, so a controller's write
goes through the same rules as a client's: admission (namespace exists and is not
terminating, the pod's ServiceAccount exists), defaulting, validation, status
subresource rules, `generation`, `managedFields`, graceful deletion, finalizers and
ownerReference-based cascading.
"""

from __future__ import annotations

import ipaddress
import itertools
import threading
from collections.abc import Callable

from . import defaults, errors, merge, pod_security, quota, schema, validation
from .resources import (
    CERTIFICATES,
    DEPLOYMENTS,
    INGRESSES,
    JOBS,
    LIMITRANGES,
    NAMESPACES,
    PODS,
    PVCS,
    REPLICASETS,
    RESOURCEQUOTAS,
    SERVICEACCOUNTS,
    SERVICES,
    STATEFULSETS,
    Resource,
)
from .store import Store
from .util import clone, new_uid, now, random_suffix

CONTROLLER_MANAGER = "kube-controller-manager"
_SERVER_META = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "selfLink",
)
_IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_CONFLICT_RETRIES = 8


class Registry:
    """Create/update/patch/apply/delete with the rules of a real API server."""

    def __init__(self, store: Store, *, validate_internal: bool = False):
        self.store = store
        self.validate_internal = validate_internal
        self._alloc_lock = threading.Lock()
        self._service_ips = itertools.count(int(ipaddress.ip_address("10.96.0.10")))
        self._node_ports = itertools.count(30000)

    # -- create ---------------------------------------------------------------------------------------

    def create(
        self,
        resource: Resource,
        namespace: str,
        body,
        *,
        manager: str,
        dry_run: bool = False,
        internal: bool = False,
        managed: list[dict] | None = None,
    ) -> dict:
        """POST: store a new object. 409 if the name is taken, 404/403 from admission, 422 if invalid."""
        obj = self._check_body(resource, namespace, body)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        for key in _SERVER_META:
            meta.pop(key, None)
        if resource.namespaced:
            meta["namespace"] = namespace
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = now()
        if resource.generation:
            meta["generation"] = 1
        if resource.status_subresource:
            obj.pop("status", None)
        obj, causes = self._normalize(resource, obj)
        if causes:
            raise errors.invalid_object(resource, meta.get("name") or "", causes)
        if resource.namespaced:
            self._admit(resource, obj)
        defaulted = _try(
            lambda: (defaults.apply_defaults(resource, obj, creating=True), self._on_create(resource, obj))
        )
        if not internal:
            validation.validate(resource, obj)
        elif self.validate_internal:
            validation.validate(resource, obj, full=True, schema_only=True)  # the emulator's own writes
        defaulted.reraise()
        if managed is not None:
            obj["metadata"]["managedFields"] = managed
        else:
            merge.record_update(
                None,
                obj,
                manager=manager,
                node=schema.root(resource),
                ignore_status=resource.status_subresource,
                api_version=resource.api_version,
            )
        if dry_run:
            return obj
        return self.store.create(resource, obj)

    def _admit(self, resource: Resource, obj: dict) -> None:
        meta = obj["metadata"]
        namespace = meta["namespace"]
        ns = self.store.get(NAMESPACES, "", namespace)
        if ns is None:
            raise errors.namespace_not_found(namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.forbidden_object(
                resource,
                meta.get("name", ""),
                f"unable to create new content in namespace {namespace} because it is being terminated",
                [
                    {
                        "reason": "NamespaceTerminating",
                        "message": f"namespace {namespace} is being terminated",
                        "field": "metadata.namespace",
                    }
                ],
            )
        if resource is PODS:
            spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
            account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
            if self.store.get(SERVICEACCOUNTS, namespace, account) is None:
                raise errors.forbidden_object(
                    resource,
                    meta.get("name", ""),
                    f'error looking up service account {namespace}/{account}: serviceaccount "{account}" not found',
                )
            reason = pod_security.refusal(obj, pod_security.enforced_level(ns)) or quota.refusal(
                obj,
                quotas=self.store.list(RESOURCEQUOTAS, namespace)[0],
                limit_ranges=self.store.list(LIMITRANGES, namespace)[0],
                pods=self.store.list(PODS, namespace)[0],
            )
            if reason is not None:
                raise errors.forbidden_object(resource, meta.get("name", ""), reason)

    def _on_create(self, resource: Resource, obj: dict) -> None:
        """Server-side fields set at creation: initial status, allocated IPs and ports."""
        if resource is PODS:
            obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}
        elif resource is NAMESPACES:
            obj["status"] = {"phase": "Active"}
        elif resource is PVCS:
            obj["status"] = {"phase": "Pending"}
        elif resource is SERVICES:
            spec = obj.setdefault("spec", {})
            if spec.get("type") != "ExternalName":
                with self._alloc_lock:
                    if not spec.get("clusterIP"):
                        spec["clusterIP"] = str(ipaddress.ip_address(next(self._service_ips)))
                    for port in spec.get("ports") or ():
                        if spec.get("type") in ("NodePort", "LoadBalancer") and "nodePort" not in port:
                            port["nodePort"] = next(self._node_ports)
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
            obj["status"] = {"loadBalancer": {}}
        elif resource is INGRESSES:
            obj["status"] = {"loadBalancer": {}}
        elif resource in (STATEFULSETS, REPLICASETS):
            obj["status"] = {"replicas": 0, "availableReplicas": 0}
        elif resource in (DEPLOYMENTS, JOBS):
            obj["status"] = {}

    # -- update / patch / apply ------------------------------------------------------------------------

    def replace(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        body,
        *,
        manager: str,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict:
        """PUT: replace the object. 409 when the body's resourceVersion is stale, 404 when missing."""
        obj = self._check_body(resource, namespace, body, name)
        expected = obj["metadata"].get("resourceVersion") or None
        for _ in range(_CONFLICT_RETRIES):
            old = self._get_or_404(resource, namespace, name)
            if expected is not None and old["metadata"]["resourceVersion"] != expected:
                raise errors.conflict(resource, name)
            new = self._prepare_update(resource, old, clone(obj), manager=manager, subresource=subresource)
            try:
                return self._commit(resource, old, new, dry_run)
            except errors.ApiError as exc:
                if exc.code != 409 or expected is not None:
                    raise
        raise errors.conflict(resource, name)

    def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch_type: str,
        patch,
        *,
        manager: str,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict:
        """PATCH with a JSON merge, strategic merge or JSON patch."""
        if patch_type == "strategic" and resource.custom:
            raise errors.unsupported_media_type(
                "application/strategic-merge-patch+json",
                ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"],
            )
        for _ in range(_CONFLICT_RETRIES):
            old = self._get_or_404(resource, namespace, name)
            target = clone(old)
            if patch_type == "json":
                patched = merge.json_patch(target, patch)
            elif not isinstance(patch, dict):
                raise errors.bad_request("the body of the request must be a JSON object for this patch type")
            elif patch_type == "merge":
                patched = merge.merge_patch(target, patch)
            else:
                patched = merge.strategic_merge_patch(target, patch, schema.root(resource))
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch produced something other than an object")
            expected = (patched.get("metadata") or {}).get("resourceVersion")
            if expected and expected != old["metadata"]["resourceVersion"]:
                raise errors.conflict(resource, name)
            self._check_identity(resource, namespace, name, patched)
            new = self._prepare_update(resource, old, patched, manager=manager, subresource=subresource)
            try:
                return self._commit(resource, old, new, dry_run)
            except errors.ApiError as exc:
                if exc.code != 409:
                    raise
        raise errors.conflict(resource, name)

    def apply(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        config,
        *,
        manager: str,
        force: bool,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> tuple[dict, bool]:
        """Server-side apply: create when missing, else merge under `manager`'s ownership.
        Returns (object, created)."""
        if not isinstance(config, dict):
            raise errors.bad_request("the body of an apply patch must be an object")
        api_version, kind = config.get("apiVersion"), config.get("kind")
        if api_version != resource.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({resource.api_version})"
            )
        if kind != resource.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})"
            )
        config_meta = config.get("metadata") or {}
        if config_meta.get("managedFields"):
            raise errors.bad_request("metadata.managedFields must be nil")
        self._check_identity(resource, namespace, name, config)
        config, causes = self._normalize(resource, config)
        node = schema.root(resource)
        for _ in range(_CONFLICT_RETRIES):
            old = self.store.get(resource, namespace, name)
            if old is None:
                if subresource:
                    raise errors.not_found(resource, name)
                live = {"apiVersion": resource.api_version, "kind": resource.kind, "metadata": {"name": name}}
                merged = merge.apply(
                    live,
                    config,
                    manager=manager,
                    force=force,
                    node=node,
                    ignore_status=resource.status_subresource,
                    api_version=resource.api_version,
                )
                managed = merged["metadata"].pop("managedFields")
                try:
                    return self.create(
                        resource, namespace, merged, manager=manager, dry_run=dry_run, managed=managed
                    ), True
                except errors.ApiError as exc:
                    if exc.reason != "AlreadyExists":
                        raise
                    continue
            if causes:
                raise errors.invalid_object(resource, name, causes)
            expected = config_meta.get("resourceVersion")
            if expected and expected != old["metadata"]["resourceVersion"]:
                raise errors.conflict(resource, name)
            merged = merge.apply(
                clone(old),
                config,
                manager=manager,
                force=force,
                node=node,
                ignore_status=resource.status_subresource,
                api_version=resource.api_version,
            )
            new = self._prepare_update(resource, old, merged, manager=manager, subresource=subresource, applied=True)
            try:
                return self._commit(resource, old, new, dry_run), False
            except errors.ApiError as exc:
                if exc.code != 409 or exc.reason != "Conflict" or "Apply failed" in exc.message:
                    raise
        raise errors.conflict(resource, name)

    def _prepare_update(
        self, resource: Resource, old: dict, new: dict, *, manager: str, subresource: str | None, applied: bool = False
    ) -> dict:
        """Turn a client's intended object into the object to store (or `old` itself when nothing changes)."""
        old_meta = old["metadata"]
        if subresource == "status":
            result = clone(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            result, causes = self._normalize(resource, result)
            if causes:
                raise errors.invalid_object(resource, old_meta["name"], causes)
            if result == old:
                return old
            validation.validate(resource, result, full=True, schema_only=True)
            return result
        meta = new.setdefault("metadata", {})
        for key in (
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if not applied:
            meta["managedFields"] = old_meta.get("managedFields") or []
        if resource.status_subresource:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        new, causes = self._normalize(resource, new)
        if causes:
            raise errors.invalid_object(resource, old_meta["name"], causes)
        defaulted = _try(
            lambda: (defaults.apply_defaults(resource, new, creating=False), self._carry_over(resource, old, new))
        )
        if resource.generation and _spec_changed(resource, old, new):
            new["metadata"]["generation"] = old_meta.get("generation", 1) + 1
        if not applied:
            merge.record_update(
                old,
                new,
                manager=manager,
                node=schema.root(resource),
                ignore_status=resource.status_subresource,
                api_version=resource.api_version,
            )
            if not new["metadata"]["managedFields"]:
                new["metadata"].pop("managedFields")
        if new == old and defaulted.ok:
            return old  # nothing changes: skip validating what was valid when stored
        validation.validate(resource, new, old)
        defaulted.reraise()
        return new

    def _carry_over(self, resource: Resource, old: dict, new: dict) -> None:
        """Fields a client may omit on update that the server keeps (allocated IPs, bindings)."""
        old_spec, new_spec = old.get("spec") or {}, new.get("spec")
        if not isinstance(new_spec, dict):
            return
        if resource is SERVICES and new_spec.get("type") != "ExternalName":
            for key in ("clusterIP", "clusterIPs"):
                if key in old_spec and not new_spec.get(key):
                    new_spec[key] = old_spec[key]
        elif resource is PODS and old_spec.get("nodeName") and not new_spec.get("nodeName"):
            new_spec["nodeName"] = old_spec["nodeName"]
        elif resource is PVCS and old_spec.get("volumeName") and not new_spec.get("volumeName"):
            new_spec["volumeName"] = old_spec["volumeName"]

    def _commit(self, resource: Resource, old: dict, new: dict, dry_run: bool) -> dict:
        if new is old or dry_run:
            return new
        stored = self.store.update(resource, new, old["metadata"]["resourceVersion"])
        meta = stored["metadata"]
        # A terminating object goes once its last finalizer is removed; pods and namespaces are removed by
        # their controllers (kubelet, namespace controller) instead.
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and resource not in (PODS, NAMESPACES):
            try:
                return self.store.delete(resource, meta.get("namespace", ""), meta["name"], meta["resourceVersion"])
            except errors.ApiError:
                return stored
        return stored

    # -- internal writes (controllers) -------------------------------------------------------------------

    def mutate(self, resource: Resource, namespace: str, name: str, change: Callable[[dict], None]) -> dict | None:
        """Read-modify-write by a controller: `change` edits a private copy in place. Writes only when
        something changed; retries on conflicts; returns the stored object, None when it is gone."""
        for _ in range(_CONFLICT_RETRIES):
            old = self.store.get(resource, namespace, name)
            if old is None:
                return None
            new = clone(old)
            change(new)
            if new == old:
                return old
            if resource.generation and resource is not PODS and _spec_changed(resource, old, new):
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
            if self.validate_internal:
                validation.validate(resource, new, full=True, schema_only=True)
            try:
                return self._commit(resource, old, new, False)
            except errors.ApiError as exc:
                if exc.code == 404:
                    return None
                if exc.code != 409:
                    raise
        return None

    # -- delete -------------------------------------------------------------------------------------

    def delete(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        *,
        grace: int | None = None,
        propagation: str | None = None,
        preconditions: dict | None = None,
        dry_run: bool = False,
    ) -> tuple[dict, bool]:
        """DELETE. Returns (object, gone): gone is False while it terminates (graceful pods, finalizers,
        namespaces)."""
        for _ in range(_CONFLICT_RETRIES):
            old = self._get_or_404(resource, namespace, name)
            meta = old["metadata"]
            _check_preconditions(resource, name, meta, preconditions or {})
            if resource is NAMESPACES:
                return self._delete_namespace(old, dry_run), False
            if meta.get("deletionTimestamp"):
                if resource is PODS and grace == 0 and not meta.get("finalizers"):
                    return self.store.delete(resource, namespace, name), True
                return old, False
            if propagation is None:
                propagation = "Orphan" if resource is JOBS else "Background"
            if propagation not in ("Orphan", "Background", "Foreground"):
                raise errors.invalid_object(
                    resource,
                    name,
                    [errors.unsupported("propagationPolicy", propagation, ["Foreground", "Background", "Orphan"])],
                )
            if dry_run:
                return old, False
            finalizers = list(meta.get("finalizers") or ())
            if propagation == "Orphan":
                if resource is PODS:
                    self.orphan_dependents(meta["uid"])
                elif "orphan" not in finalizers:
                    # As the real server: the object waits (terminating) until the garbage collector has
                    # removed its ownerReferences from the dependents, then goes.
                    finalizers.append("orphan")
            if propagation == "Foreground" and self.store.dependents(meta["uid"]):
                finalizers.append("foregroundDeletion")
            graceful = resource is PODS and _pod_needs_grace(old, grace)
            if not finalizers and not graceful:
                try:
                    return self.store.delete(resource, namespace, name, meta["resourceVersion"]), True
                except errors.ApiError as exc:
                    if exc.code != 409:
                        raise
                    continue
            new = clone(old)
            new_meta = new["metadata"]
            if graceful:
                seconds = (
                    grace if grace is not None else (old.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                )
            else:
                seconds = 0
            new_meta["deletionTimestamp"] = now()
            new_meta["deletionGracePeriodSeconds"] = seconds
            if finalizers:
                new_meta["finalizers"] = finalizers
            if resource.generation:
                new_meta["generation"] = meta.get("generation", 1) + 1
            try:
                return self.store.update(resource, new, meta["resourceVersion"]), False
            except errors.ApiError as exc:
                if exc.code != 409:
                    raise
        raise errors.conflict(resource, name)

    def _delete_namespace(self, old: dict, dry_run: bool) -> dict:
        name = old["metadata"]["name"]
        if name in _IMMORTAL_NAMESPACES:
            raise errors.forbidden_object(NAMESPACES, name, "this namespace may not be deleted")
        if old["metadata"].get("deletionTimestamp"):
            raise errors.conflict(
                NAMESPACES,
                name,
                "The system is ensuring all content is removed from this "
                "namespace.  Upon completion, this namespace will "
                "automatically be purged by the system.",
            )
        if dry_run:
            return old
        new = clone(old)
        new["metadata"]["deletionTimestamp"] = now()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new["status"] = dict(new.get("status") or {}, phase="Terminating")
        return self.store.update(NAMESPACES, new, old["metadata"]["resourceVersion"])

    def orphan_dependents(self, uid: str) -> None:
        """Remove ownerReferences to `uid` from its dependents (what the `orphan` finalizer waits for)."""
        for dep in self.store.dependents(uid):
            resource = self.store.resource_of_uid(dep["metadata"]["uid"])
            if resource is None:
                continue

            def drop_ref(obj: dict) -> None:
                refs = [r for r in obj["metadata"].get("ownerReferences") or () if r.get("uid") != uid]
                if refs:
                    obj["metadata"]["ownerReferences"] = refs
                else:
                    obj["metadata"].pop("ownerReferences", None)

            self.mutate(resource, dep["metadata"].get("namespace", ""), dep["metadata"]["name"], drop_ref)

    def finish_deletion(self, resource: Resource, namespace: str, name: str) -> bool:
        """Remove a terminating object for good once nothing holds it (finalizers). True when gone."""
        obj = self.store.get(resource, namespace, name)
        if obj is None:
            return True
        if obj["metadata"].get("finalizers") or (obj.get("spec") or {}).get("finalizers"):
            return False
        try:
            self.store.delete(resource, namespace, name)
        except errors.ApiError:
            pass
        return True

    # -- helpers ------------------------------------------------------------------------------------

    def _get_or_404(self, resource: Resource, namespace: str, name: str) -> dict:
        obj = self.store.get(resource, namespace, name)
        if obj is None:
            raise errors.not_found(resource, name)
        return obj

    def _check_body(self, resource: Resource, namespace: str, body, name: str | None = None) -> dict:
        if not isinstance(body, dict):
            raise errors.bad_request(f"the object provided is unrecognized (must be of type {resource.kind})")
        obj = clone(body)
        api_version = obj.setdefault("apiVersion", resource.api_version)
        kind = obj.setdefault("kind", resource.kind)
        if kind != resource.kind:
            raise errors.bad_request(
                f'{kind} in version "{api_version}" cannot be handled as a {resource.kind}: '
                f"the kind does not match the endpoint"
            )
        if api_version != resource.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({resource.api_version})"
            )
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        self._check_identity(resource, namespace, name, obj)
        if name is not None:
            meta.setdefault("name", name)
        return obj

    @staticmethod
    def _check_identity(resource: Resource, namespace: str, name: str | None, obj: dict) -> None:
        meta = obj.get("metadata") or {}
        body_ns = meta.get("namespace")
        if resource.namespaced and body_ns and body_ns != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        body_name = meta.get("name")
        if name is not None and body_name and body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )

    @staticmethod
    def _normalize(resource: Resource, obj: dict) -> tuple[dict, list]:
        return defaults.normalize(obj, schema.root(resource))


class _Outcome:
    """The result of a step that may fail on malformed input (which validation then reports)."""

    def __init__(self, error: Exception | None):
        self.error = error
        self.ok = error is None

    def reraise(self) -> None:
        if self.error is not None:  # validation found nothing wrong: a bug, not bad input
            raise self.error


def _try(step: Callable[[], object]) -> _Outcome:
    try:
        step()
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return _Outcome(exc)
    return _Outcome(None)


def _spec_changed(resource: Resource, old: dict, new: dict) -> bool:
    if resource is CERTIFICATES:
        ignored = ("metadata", "status")
        return {k: v for k, v in old.items() if k not in ignored} != {k: v for k, v in new.items() if k not in ignored}
    return old.get("spec") != new.get("spec")


def _pod_needs_grace(pod: dict, grace: int | None) -> bool:
    if grace == 0:
        return False
    if not (pod.get("spec") or {}).get("nodeName"):
        return False  # never scheduled: nothing to stop
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _check_preconditions(resource: Resource, name: str, meta: dict, preconditions: dict) -> None:
    uid, rv = preconditions.get("uid"), preconditions.get("resourceVersion")
    if uid and uid != meta["uid"]:
        raise errors.conflict(
            resource, name, f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta['uid']}"
        )
    if rv and rv != meta["resourceVersion"]:
        raise errors.conflict(
            resource,
            name,
            f"Precondition failed: ResourceVersion in precondition: {rv}, "
            f"ResourceVersion in object meta: {meta['resourceVersion']}",
        )


def qos_class(spec: dict) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' requests and limits."""
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        resources = c.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        if requests or limits:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
