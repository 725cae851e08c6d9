"""Namespace lifecycle and garbage collection, simulated.

- A new namespace gets its `default` ServiceAccount (and the `kube-root-ca.crt`
  ConfigMap) shortly after creation, as the real controllers do.
- A deleted namespace is Terminating while everything in it is deleted, then disappears.
- The garbage collector deletes objects whose owners are gone (background
  propagation), completes foreground deletions and orphans the dependents of
  objects deleted with propagationPolicy=Orphan (then removes their `orphan` finalizer).
"""

from __future__ import annotations

from ..errors import ApiError
from ..resources import CONFIGMAPS, NAMESPACES, SERVICEACCOUNTS
from ..store import Store
from ..util import set_condition
from .base import Context, deleting

ROOT_CA = "kube-root-ca.crt"
_FAKE_CA = "-----BEGIN CERTIFICATE-----\nTUlJQkVtdWxhdGVkQ2x1c3RlckNB\n-----END CERTIFICATE-----\n"


class NamespaceController:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def reconcile(self, _namespace: str, name: str) -> float | None:
        ns = self.ctx.store.get(NAMESPACES, "", name)
        if ns is None:
            return None
        uid = ns["metadata"]["uid"]
        if deleting(ns):
            return self._terminate(ns)
        wait = self.ctx.seen(uid) + self.ctx.timing.service_account_delay - self.ctx.clock()
        if wait > 0:
            return wait
        ensure_namespace_defaults(self.ctx, name)
        return None

    def _terminate(self, ns: dict) -> float | None:
        name, uid = ns["metadata"]["name"], ns["metadata"]["uid"]
        started = self.ctx.seen("terminating:" + uid)
        contents = self.ctx.store.namespace_contents(name)
        retry = self.ctx.timing.controller_retry
        if contents:
            for resource, obj in contents:
                if not deleting(obj):
                    try:
                        self.ctx.registry.delete(resource, name, obj["metadata"]["name"], propagation="Background")
                    except ApiError:
                        pass
            kinds = sorted({r.key for r, _ in contents})
            self._conditions(
                ns, f"Some resources are remaining: {', '.join(kinds)} has {len(contents)} resource instances"
            )
            return retry
        wait = started + self.ctx.timing.namespace_termination_delay - self.ctx.clock()
        if wait > 0:
            self._conditions(ns, None)
            return wait

        def finalize(obj: dict) -> None:
            obj.get("spec", {}).pop("finalizers", None)
            if not obj.get("spec"):
                obj.pop("spec", None)

        self.ctx.registry.mutate(NAMESPACES, "", name, finalize)
        if self.ctx.registry.finish_deletion(NAMESPACES, "", name):
            self.ctx.forget(uid)
            self.ctx.forget("terminating:" + uid)
            return None
        return retry

    def _conditions(self, ns: dict, remaining: str | None) -> None:
        def update(obj: dict) -> None:
            status = obj.setdefault("status", {})
            conditions = status.get("conditions") or []
            for type_ in (
                "NamespaceDeletionDiscoveryFailure",
                "NamespaceDeletionGroupVersionParsingFailure",
                "NamespaceDeletionContentFailure",
            ):
                conditions = set_condition(conditions, type_, "False", _REASONS[type_], _MESSAGES[type_])
            if remaining:
                conditions = set_condition(
                    conditions, "NamespaceContentRemaining", "True", "SomeResourcesRemain", remaining
                )
            else:
                conditions = set_condition(
                    conditions,
                    "NamespaceContentRemaining",
                    "False",
                    "ContentRemoved",
                    "All content successfully removed",
                )
            conditions = set_condition(
                conditions,
                "NamespaceFinalizersRemaining",
                "False",
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished",
            )
            status["conditions"] = conditions

        self.ctx.registry.mutate(NAMESPACES, "", ns["metadata"]["name"], update)


_REASONS = {
    "NamespaceDeletionDiscoveryFailure": "ResourcesDiscovered",
    "NamespaceDeletionGroupVersionParsingFailure": "ParsedGroupVersions",
    "NamespaceDeletionContentFailure": "ContentDeleted",
}
_MESSAGES = {
    "NamespaceDeletionDiscoveryFailure": "All resources successfully discovered",
    "NamespaceDeletionGroupVersionParsingFailure": "All legacy kube types successfully parsed",
    "NamespaceDeletionContentFailure": "All content successfully deleted, may be waiting on finalization",
}


def ensure_namespace_defaults(ctx_or_registry, namespace: str) -> None:
    """Create the namespace's `default` ServiceAccount and root CA ConfigMap if missing."""
    registry = getattr(ctx_or_registry, "registry", ctx_or_registry)
    store = registry.store
    if store.get(SERVICEACCOUNTS, namespace, "default") is None:
        try:
            registry.create(
                SERVICEACCOUNTS,
                namespace,
                {"metadata": {"name": "default"}},
                manager="kube-controller-manager",
                internal=True,
            )
        except ApiError:
            pass
    if store.get(CONFIGMAPS, namespace, ROOT_CA) is None:
        try:
            registry.create(
                CONFIGMAPS,
                namespace,
                {
                    "metadata": {
                        "name": ROOT_CA,
                        "annotations": {
                            "kubernetes.io/description": "Contains a CA bundle that can be used to verify the "
                            "kube-apiserver when using internal endpoints such as the internal "
                            "service IP or kubernetes.default.svc. No other usage is "
                            "guaranteed across distributions of Kubernetes clusters."
                        },
                    },
                    "data": {"ca.crt": _FAKE_CA},
                },
                manager="kube-root-ca-cert-publisher",
                internal=True,
            )
        except ApiError:
            pass


class GarbageCollector:
    """Deletes dependents whose owners are all gone; finishes foreground deletions."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def reconcile(self, _namespace: str, uid: str) -> float | None:
        store: Store = self.ctx.store
        owner = store.by_uid(uid)
        if owner is None:
            self.ctx.forget(uid)
        dependents = store.dependents(uid)
        if owner is not None:
            finalizers = owner["metadata"].get("finalizers") or ()
            if deleting(owner) and "orphan" in finalizers:
                return self._orphan(owner)
            if not deleting(owner) or "foregroundDeletion" not in finalizers:
                return None
            blocking = [
                d
                for d in dependents
                if any(
                    r.get("uid") == uid and r.get("blockOwnerDeletion")
                    for r in d["metadata"].get("ownerReferences") or ()
                )
            ]
            for dep in dependents:
                self._delete(dep, "Foreground")
            if blocking:
                return self.ctx.timing.controller_retry
            resource = store.resource_of_uid(uid)
            meta = owner["metadata"]

            def release(obj: dict) -> None:
                obj["metadata"]["finalizers"] = [
                    f for f in obj["metadata"].get("finalizers") or () if f != "foregroundDeletion"
                ]
                if not obj["metadata"]["finalizers"]:
                    del obj["metadata"]["finalizers"]

            if resource is not None:
                self.ctx.registry.mutate(resource, meta.get("namespace", ""), meta["name"], release)
            return None
        for dep in dependents:
            refs = dep["metadata"].get("ownerReferences") or ()
            if all(store.by_uid(r["uid"]) is None for r in refs):
                self._delete(dep, "Background")
        return None

    def _orphan(self, owner: dict) -> None:
        """propagationPolicy=Orphan: the dependents lose their ownerReference to the owner, then the owner's
        `orphan` finalizer goes (and with the last finalizer, the owner)."""
        meta = owner["metadata"]
        self.ctx.registry.orphan_dependents(meta["uid"])
        resource = self.ctx.store.resource_of_uid(meta["uid"])

        def release(obj: dict) -> None:
            finalizers = [f for f in obj["metadata"].get("finalizers") or () if f != "orphan"]
            if finalizers:
                obj["metadata"]["finalizers"] = finalizers
            else:
                obj["metadata"].pop("finalizers", None)

        if resource is not None:
            self.ctx.registry.mutate(resource, meta.get("namespace", ""), meta["name"], release)

    def _delete(self, dep: dict, propagation: str) -> None:
        if deleting(dep):
            return
        resource = self.ctx.store.resource_of_uid(dep["metadata"]["uid"])
        if resource is None:
            return
        try:
            self.ctx.registry.delete(
                resource, dep["metadata"].get("namespace", ""), dep["metadata"]["name"], propagation=propagation
            )
        except ApiError:
            pass
