"""The volume provisioner and the PVC protection controller, simulated: claims bind
to a freshly provisioned PersistentVolume after a delay; a deleted claim goes away
once no pod uses it, taking its volume with it (reclaim policy Delete)."""

from __future__ import annotations

from ..defaults import PVC_PROTECTION
from ..errors import ApiError
from ..resources import PODS, PVCS, PVS
from ..util import now
from .base import Context, deleting

PROVISIONER = "rancher.io/local-path"


class ClaimController:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def reconcile(self, namespace: str, name: str) -> float | None:
        claim = self.ctx.store.get(PVCS, namespace, name)
        if claim is None:
            return None
        meta = claim["metadata"]
        if deleting(claim):
            return self._release(claim)
        status = claim.get("status") or {}
        request = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
        if status.get("phase") == "Bound":
            if request and (status.get("capacity") or {}).get("storage") != request:
                self._resize(claim, request)
            return None
        due = self.ctx.seen(meta["uid"]) + self.ctx.timing.pvc_bind_delay
        wait = due - self.ctx.clock()
        if wait > 0:
            if not status.get("conditions") and not (meta.get("annotations") or {}).get(
                "volume.kubernetes.io/storage-provisioner"
            ):
                self._annotate_provisioner(claim)
            return wait
        self._bind(claim, request or "1Gi")
        return None

    def _annotate_provisioner(self, claim: dict) -> None:
        meta = claim["metadata"]

        def annotate(obj: dict) -> None:
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations["volume.beta.kubernetes.io/storage-provisioner"] = PROVISIONER
            annotations["volume.kubernetes.io/storage-provisioner"] = PROVISIONER

        self.ctx.registry.mutate(PVCS, meta["namespace"], meta["name"], annotate)
        self.ctx.events.record(
            claim,
            "Normal",
            "ExternalProvisioning",
            f"Waiting for a volume to be created either by the external provisioner "
            f"'{PROVISIONER}' or manually by the system administrator. If volume creation is "
            "delayed, please verify that your external provisioner is running and correctly "
            "registered.",
            component="persistentvolume-controller",
        )

    def _bind(self, claim: dict, size: str) -> None:
        meta, spec = claim["metadata"], claim.get("spec") or {}
        volume_name = f"pvc-{meta['uid']}"
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume_name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": spec.get("storageClassName") or "standard",
                "volumeMode": spec.get("volumeMode", "Filesystem"),
                "claimRef": {
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "apiVersion": "v1",
                    "resourceVersion": meta["resourceVersion"],
                },
                "hostPath": {
                    "path": f"/var/local-path-provisioner/{volume_name}_{meta['namespace']}_{meta['name']}",
                    "type": "DirectoryOrCreate",
                },
            },
        }
        try:
            created = self.ctx.registry.create(PVS, "", volume, manager=PROVISIONER, internal=True)
        except ApiError as exc:
            if exc.reason != "AlreadyExists":
                return
            created = self.ctx.store.get(PVS, "", volume_name)

        def bound_volume(obj: dict) -> None:
            obj["status"] = {"phase": "Bound", "lastPhaseTransitionTime": now()}

        if created is not None and (created.get("status") or {}).get("phase") != "Bound":
            self.ctx.registry.mutate(PVS, "", volume_name, bound_volume)

        def bind(obj: dict) -> None:
            obj["spec"]["volumeName"] = volume_name
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations["pv.kubernetes.io/bind-completed"] = "yes"
            annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
            annotations["volume.beta.kubernetes.io/storage-provisioner"] = PROVISIONER
            annotations["volume.kubernetes.io/storage-provisioner"] = PROVISIONER
            obj["status"] = {
                "phase": "Bound",
                "accessModes": list(obj["spec"].get("accessModes") or []),
                "capacity": {"storage": size},
            }

        self.ctx.registry.mutate(PVCS, meta["namespace"], meta["name"], bind)
        self.ctx.events.record(
            claim,
            "Normal",
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {volume_name}",
            component=PROVISIONER,
        )

    def _resize(self, claim: dict, request: str) -> None:
        meta = claim["metadata"]

        def resize(obj: dict) -> None:
            obj["status"]["capacity"] = {"storage": request}

        self.ctx.registry.mutate(PVCS, meta["namespace"], meta["name"], resize)
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name:
            self.ctx.registry.mutate(PVS, "", volume_name, lambda v: v["spec"].update(capacity={"storage": request}))

    def _release(self, claim: dict) -> float | None:
        """Drop the protection finalizer once no pod uses the claim; then delete its volume."""
        meta = claim["metadata"]
        if PVC_PROTECTION in (meta.get("finalizers") or ()):
            pods, _ = self.ctx.store.list(PODS, meta["namespace"], lambda p: _uses(p, meta["name"]))
            if pods:
                return None  # re-checked when those pods go away

            def unprotect(obj: dict) -> None:
                obj["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != PVC_PROTECTION]
                if not obj["metadata"]["finalizers"]:
                    del obj["metadata"]["finalizers"]

            self.ctx.registry.mutate(PVCS, meta["namespace"], meta["name"], unprotect)
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name and self.ctx.store.get(PVCS, meta["namespace"], meta["name"]) is None:
            self.volume_released(volume_name)
        return None

    def volume_released(self, volume_name: str) -> None:
        try:
            self.ctx.registry.delete(PVS, "", volume_name)
        except ApiError:
            pass


def _uses(pod: dict, claim: str) -> bool:
    return any(
        (v.get("persistentVolumeClaim") or {}).get("claimName") == claim
        for v in (pod.get("spec") or {}).get("volumes") or ()
    )
