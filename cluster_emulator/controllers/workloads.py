"""The ReplicaSet, Deployment and StatefulSet controllers, simulated.

They follow the real controllers' rules closely enough for a client to see the
same sequence: Deployment -> ReplicaSet (pod-template-hash) -> Pods with rolling
updates; StatefulSet pods `<sts>-<ordinal>` created in order with their claims,
rolled from the highest ordinal down, claims kept by default.
"""

from __future__ import annotations

import re

from ..errors import ApiError
from ..resources import DEPLOYMENTS, PODS, PVCS, REPLICASETS, STATEFULSETS
from ..selectors import from_object
from ..util import clone, controller_of, labels_of, now, owner_reference, safe_hash, set_condition
from .base import Context, deleting, owned, pod_ready, pod_running_ready

REVISION = "deployment.kubernetes.io/revision"
_CONTROLLER = "kube-controller-manager"


def _percent(value, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    text = str(value or "0")
    if text.endswith("%"):
        exact = int(text[:-1]) * total / 100
        return int(-(-exact // 1)) if round_up else int(exact)
    return int(text)


def _pod_from_template(
    template: dict,
    namespace: str,
    owner: dict,
    *,
    name: str | None = None,
    generate: str | None = None,
    extra_labels: dict | None = None,
) -> dict:
    meta = clone(template.get("metadata") or {})
    labels = dict(meta.get("labels") or {})
    labels.update(extra_labels or {})
    metadata = {"namespace": namespace, "labels": labels, "ownerReferences": [owner_reference(owner)]}
    if meta.get("annotations"):
        metadata["annotations"] = meta["annotations"]
    if name:
        metadata["name"] = name
    else:
        metadata["generateName"] = generate
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": clone(template.get("spec") or {})}


class ReplicaSetController:
    """Keeps `spec.replicas` pods running for each ReplicaSet."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def reconcile(self, namespace: str, name: str) -> float | None:
        rs = self.ctx.store.get(REPLICASETS, namespace, name)
        if rs is None or deleting(rs):
            return None
        spec = rs.get("spec") or {}
        pods = owned(self.ctx.store, rs, "Pod")
        active = [
            p for p in pods if not deleting(p) and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        want = spec.get("replicas", 1)
        retry = None
        if len(active) < want:
            for _ in range(min(want - len(active), 500)):
                body = _pod_from_template(spec.get("template") or {}, namespace, rs, generate=f"{name}-")
                try:
                    pod = self.ctx.registry.create(PODS, namespace, body, manager=_CONTROLLER, internal=True)
                except ApiError as exc:
                    self.ctx.events.record(
                        rs,
                        "Warning",
                        "FailedCreate",
                        f"Error creating: {exc.message}",
                        component="replicaset-controller",
                    )
                    retry = self.ctx.timing.controller_retry
                    break
                active.append(pod)
                self.ctx.events.record(
                    rs,
                    "Normal",
                    "SuccessfulCreate",
                    f"Created pod: {pod['metadata']['name']}",
                    component="replicaset-controller",
                )
        elif len(active) > want:
            # Like the real controller: unscheduled first, then not ready, then the newest.
            victims = sorted(
                active,
                key=lambda p: (
                    bool((p.get("spec") or {}).get("nodeName")),
                    pod_ready(p),
                    p["metadata"]["creationTimestamp"],
                ),
                reverse=False,
            )
            victims = sorted(victims[: len(active) - want], key=lambda p: p["metadata"]["name"])
            for pod in victims:
                try:
                    self.ctx.registry.delete(PODS, namespace, pod["metadata"]["name"])
                except ApiError:
                    continue
                active.remove(pod)
                self.ctx.events.record(
                    rs,
                    "Normal",
                    "SuccessfulDelete",
                    f"Deleted pod: {pod['metadata']['name']}",
                    component="replicaset-controller",
                )
        selector = from_object(spec.get("selector"))
        ready = sum(1 for p in active if pod_ready(p))
        status = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(1 for p in active if selector.matches(labels_of(p))),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        terminating = sum(1 for p in pods if deleting(p))
        if terminating:
            status["terminatingReplicas"] = terminating
        _write_status(self.ctx, REPLICASETS, rs, {k: v for k, v in status.items() if v or k == "replicas"})
        return retry


class DeploymentController:
    """Rolls Deployments out through ReplicaSets and reports their status and conditions."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._progress: dict[tuple[str, str], tuple[tuple, float]] = {}  # last progress seen, and when

    def reconcile(self, namespace: str, name: str) -> float | None:
        d = self.ctx.store.get(DEPLOYMENTS, namespace, name)
        if d is None or deleting(d):
            self._progress.pop((namespace, name), None)
            return None
        spec = d.get("spec") or {}
        desired = spec.get("replicas", 1)
        template = spec.get("template") or {}
        template_hash = safe_hash(template)
        sets = owned(self.ctx.store, d, "ReplicaSet")
        revisions = {
            rs["metadata"]["name"]: int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)
            for rs in sets
        }
        top = max(revisions.values(), default=0)
        new_rs = next((rs for rs in sets if labels_of(rs).get("pod-template-hash") == template_hash), None)
        old_sets = [rs for rs in sets if rs is not new_rs]
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        old_pods_left = any(
            (rs.get("status") or {}).get("replicas", 0) or (rs.get("spec") or {}).get("replicas", 0) for rs in old_sets
        )
        new_target = 0 if recreate and old_pods_left else desired
        if new_rs is None:
            new_rs = self._create_rs(d, template, template_hash, new_target, top + 1)
            if new_rs is None:
                return self.ctx.timing.controller_retry
            revisions[new_rs["metadata"]["name"]] = top + 1
            self._scaled(d, new_rs, 0, new_target)
        elif revisions[new_rs["metadata"]["name"]] < top:
            self._annotate_revision(new_rs, top + 1)
            revisions[new_rs["metadata"]["name"]] = top + 1
        self._scale(d, new_rs, new_target, desired)
        new_available = (new_rs.get("status") or {}).get("availableReplicas", 0) if new_rs else 0
        allowance = 0 if recreate else max(0, desired - new_available)
        for rs in sorted(old_sets, key=lambda r: revisions.get(r["metadata"]["name"], 0), reverse=True):
            current = (rs.get("spec") or {}).get("replicas", 0)
            target = min(current, allowance)
            allowance -= target
            self._scale(d, rs, target, desired)
        self._cleanup(d, old_sets, revisions)
        revision = str(revisions[new_rs["metadata"]["name"]])
        if (d["metadata"].get("annotations") or {}).get(REVISION) != revision:

            def annotate(obj: dict) -> None:
                obj["metadata"].setdefault("annotations", {})[REVISION] = revision

            d = self.ctx.registry.mutate(DEPLOYMENTS, namespace, name, annotate) or d
        return self._status(d, new_rs, sets)

    def _create_rs(self, d: dict, template: dict, template_hash: str, replicas: int, revision: int) -> dict | None:
        meta = d["metadata"]
        labels = dict((template.get("metadata") or {}).get("labels") or {}, **{"pod-template-hash": template_hash})
        rs_template = clone(template)
        rs_template.setdefault("metadata", {})["labels"] = labels
        selector = clone((d.get("spec") or {}).get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = template_hash
        max_surge = _percent(
            ((d["spec"].get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge", "25%"),
            d["spec"].get("replicas", 1),
            True,
        )
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{template_hash}",
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": str(d["spec"].get("replicas", 1)),
                    "deployment.kubernetes.io/max-replicas": str(d["spec"].get("replicas", 1) + max_surge),
                    REVISION: str(revision),
                },
                "ownerReferences": [owner_reference(d)],
            },
            "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
        }
        if "minReadySeconds" in d["spec"]:
            body["spec"]["minReadySeconds"] = d["spec"]["minReadySeconds"]
        try:
            return self.ctx.registry.create(REPLICASETS, meta["namespace"], body, manager=_CONTROLLER, internal=True)
        except ApiError as exc:
            if exc.reason == "AlreadyExists":
                return self.ctx.store.get(REPLICASETS, meta["namespace"], body["metadata"]["name"])
            return None

    def _annotate_revision(self, rs: dict, revision: int) -> None:
        def annotate(obj: dict) -> None:
            obj["metadata"].setdefault("annotations", {})[REVISION] = str(revision)

        self.ctx.registry.mutate(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"], annotate)

    def _scale(self, d: dict, rs: dict, replicas: int, desired: int) -> None:
        current = (rs.get("spec") or {}).get("replicas", 0)

        def scale(obj: dict) -> None:
            obj["spec"]["replicas"] = replicas
            obj["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/desired-replicas"] = str(desired)

        if current == replicas and (rs["metadata"].get("annotations") or {}).get(
            "deployment.kubernetes.io/desired-replicas"
        ) == str(desired):
            return
        self.ctx.registry.mutate(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"], scale)
        if current != replicas:
            # Scaling the ReplicaSet's spec bumps its generation, like a real update.
            self._scaled(d, rs, current, replicas)

    def _scaled(self, d: dict, rs: dict, before: int, after: int) -> None:
        if before == after:
            return
        direction = "up" if after > before else "down"
        self.ctx.events.record(
            d,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled {direction} replica set {rs['metadata']['name']} from {before} to {after}",
            component="deployment-controller",
        )

    def _cleanup(self, d: dict, old_sets: list[dict], revisions: dict[str, int]) -> None:
        limit = (d.get("spec") or {}).get("revisionHistoryLimit", 10)
        idle = [
            rs
            for rs in old_sets
            if not (rs.get("spec") or {}).get("replicas") and not (rs.get("status") or {}).get("replicas")
        ]
        idle.sort(key=lambda r: revisions.get(r["metadata"]["name"], 0))
        for rs in idle[: max(0, len(idle) - limit)]:
            try:
                self.ctx.registry.delete(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])
            except ApiError:
                pass

    def _status(self, d: dict, new_rs: dict, sets: list[dict]) -> float | None:
        spec = d.get("spec") or {}
        desired = spec.get("replicas", 1)
        sets = owned(self.ctx.store, d, "ReplicaSet")
        new_rs = next((rs for rs in sets if rs["metadata"]["uid"] == new_rs["metadata"]["uid"]), new_rs)

        def total(field: str) -> int:
            return sum((rs.get("status") or {}).get(field, 0) for rs in sets)

        replicas, ready, available = total("replicas"), total("readyReplicas"), total("availableReplicas")
        updated = (new_rs.get("status") or {}).get("replicas", 0)
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        max_unavailable = _percent(rolling.get("maxUnavailable", "25%"), desired, False)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            max_unavailable = desired
        conditions = (d.get("status") or {}).get("conditions") or []
        stamp = now()
        if available >= desired - max_unavailable:
            conditions = set_condition(
                conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                stamp=stamp,
                update_time=True,
            )
        else:
            conditions = set_condition(
                conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                stamp=stamp,
                update_time=True,
            )
        rs_name = new_rs["metadata"]["name"]
        complete = updated == desired and replicas == desired and available == desired
        key = (d["metadata"]["namespace"], d["metadata"]["name"])
        signature = (d["metadata"]["uid"], rs_name, updated, ready, available, replicas)
        last, since = self._progress.get(key, (None, self.ctx.clock()))
        if signature != last:
            since = self.ctx.clock()
            self._progress[key] = (signature, since)
        deadline = spec.get("progressDeadlineSeconds", 600)
        wait = None
        if complete:
            conditions = set_condition(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                stamp=stamp,
                update_time=True,
            )
        elif self.ctx.clock() - since >= deadline:
            conditions = set_condition(
                conditions,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
                stamp=stamp,
                update_time=True,
            )
        else:
            previous = next((c for c in conditions if c["type"] == "Progressing"), None)
            reason = "NewReplicaSetCreated" if previous is None else "ReplicaSetUpdated"
            message = (
                f'Created new replica set "{rs_name}"'
                if previous is None
                else f'ReplicaSet "{rs_name}" is progressing.'
            )
            conditions = set_condition(
                conditions, "Progressing", "True", reason, message, stamp=stamp, update_time=True
            )
            wait = max(since + deadline - self.ctx.clock(), 0.0)
        conditions.sort(key=lambda c: {"Available": 0, "Progressing": 1}.get(c["type"], 2))
        status = {"observedGeneration": d["metadata"].get("generation", 1)}
        for key, value in (
            ("replicas", replicas),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("unavailableReplicas", max(0, desired - available)),
        ):
            if value:
                status[key] = value
        terminating = sum(1 for rs in sets for p in owned(self.ctx.store, rs, "Pod") if deleting(p))
        if terminating:
            status["terminatingReplicas"] = terminating
        status["conditions"] = conditions
        _write_status(self.ctx, DEPLOYMENTS, d, status, ignore_times=True)
        return wait


class StatefulSetController:
    """Creates `<sts>-<ordinal>` pods in order, with claims from `volumeClaimTemplates`."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def reconcile(self, namespace: str, name: str) -> float | None:
        sts = self.ctx.store.get(STATEFULSETS, namespace, name)
        if sts is None or deleting(sts):
            return None
        spec = sts.get("spec") or {}
        replicas = spec.get("replicas", 1)
        revision = f"{name}-{safe_hash(spec.get('template') or {})}"
        ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        pattern = re.compile(rf"^{re.escape(name)}-(\d+)$")
        self._adopt_orphans(sts)
        pods: dict[int, dict] = {}
        for pod in owned(self.ctx.store, sts, "Pod"):
            match = pattern.match(pod["metadata"]["name"])
            if match:
                pods[int(match.group(1))] = pod
        retry = self._sync(sts, pods, replicas, revision, ordered)
        self._delete_scaled_claims(sts, pods, replicas)
        pods = {}
        for pod in owned(self.ctx.store, sts, "Pod"):
            match = pattern.match(pod["metadata"]["name"])
            if match:
                pods[int(match.group(1))] = pod
        self._status(sts, pods, replicas, revision)
        return retry

    def _adopt_orphans(self, sts: dict) -> None:
        """Like the real controller's ControllerRefManager: pods its selector matches that no controller owns
        (a StatefulSet deleted with propagationPolicy=Orphan, then created again) become its own, as they
        are. Their identity (hostname, subdomain) stays what it was: pod specs are immutable; their
        revision label decides whether the rolling update replaces them."""
        selector = from_object(sts["spec"].get("selector"))
        meta = sts["metadata"]

        def orphan(pod: dict) -> bool:
            return not deleting(pod) and controller_of(pod) is None and selector.matches(labels_of(pod))

        pods, _ = self.ctx.store.list(PODS, meta["namespace"], orphan)
        for pod in pods:

            def adopt(obj: dict) -> None:
                if controller_of(obj) is None:
                    obj["metadata"].setdefault("ownerReferences", []).append(owner_reference(sts))

            self.ctx.registry.mutate(PODS, meta["namespace"], pod["metadata"]["name"], adopt)

    def _sync(self, sts: dict, pods: dict[int, dict], replicas: int, revision: str, ordered: bool) -> float | None:
        """One pass of the real controller's loop: create, replace failed, scale down, roll."""
        for i in range(replicas):
            pod = pods.get(i)
            if pod is None:
                if not self._create_pod(sts, i, revision):
                    return self.ctx.timing.controller_retry
                if ordered:
                    return None
                continue
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Failed", "Succeeded") and not deleting(pod):
                self._delete_pod(sts, pod)
                if ordered:
                    return None
                continue
            if deleting(pod) and ordered:
                return None
            if ordered and not pod_running_ready(pod):
                return None
        condemned = sorted((i for i in pods if i >= replicas), reverse=True)
        for i in condemned:
            pod = pods[i]
            if deleting(pod):
                if ordered:
                    return None
                continue
            self._delete_pod(sts, pod)
            if ordered:
                return None
        strategy = sts["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return None
        partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
        for i in range(replicas - 1, partition - 1, -1):
            pod = pods.get(i)
            if pod is None:
                return None
            if labels_of(pod).get("controller-revision-hash") != revision and not deleting(pod):
                self._delete_pod(sts, pod)
                return None
            if not pod_running_ready(pod):
                return None
        return None

    def _create_pod(self, sts: dict, ordinal: int, revision: str) -> bool:
        spec, meta = sts["spec"], sts["metadata"]
        pod_name = f"{meta['name']}-{ordinal}"
        for claim in spec.get("volumeClaimTemplates") or ():
            if not self._ensure_claim(sts, claim, ordinal, pod_name):
                return False
        body = _pod_from_template(
            spec.get("template") or {},
            meta["namespace"],
            sts,
            name=pod_name,
            extra_labels={
                "controller-revision-hash": revision,
                "statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": str(ordinal),
            },
        )
        pod_spec = body["spec"]
        pod_spec["hostname"] = pod_name
        if spec.get("serviceName"):
            pod_spec["subdomain"] = spec["serviceName"]
        volumes = pod_spec.setdefault("volumes", [])
        present = {v.get("name") for v in volumes}
        for claim in spec.get("volumeClaimTemplates") or ():
            template_name = claim["metadata"]["name"]
            if template_name not in present:
                volumes.append(
                    {
                        "name": template_name,
                        "persistentVolumeClaim": {"claimName": f"{template_name}-{meta['name']}-{ordinal}"},
                    }
                )
        if not volumes:
            del pod_spec["volumes"]
        try:
            self.ctx.registry.create(PODS, meta["namespace"], body, manager=_CONTROLLER, internal=True)
        except ApiError as exc:
            self.ctx.events.record(
                sts,
                "Warning",
                "FailedCreate",
                f"create Pod {pod_name} in StatefulSet {meta['name']} failed error: {exc.message}",
                component="statefulset-controller",
            )
            return False
        self.ctx.events.record(
            sts,
            "Normal",
            "SuccessfulCreate",
            f"create Pod {pod_name} in StatefulSet {meta['name']} successful",
            component="statefulset-controller",
        )
        return True

    def _ensure_claim(self, sts: dict, template: dict, ordinal: int, pod_name: str) -> bool:
        meta = sts["metadata"]
        claim_name = f"{template['metadata']['name']}-{meta['name']}-{ordinal}"
        if self.ctx.store.get(PVCS, meta["namespace"], claim_name) is not None:
            return True
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels.update((sts["spec"].get("selector") or {}).get("matchLabels") or {})
        claim_meta = {"name": claim_name, "namespace": meta["namespace"], "labels": labels}
        if (template.get("metadata") or {}).get("annotations"):
            claim_meta["annotations"] = clone(template["metadata"]["annotations"])
        policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
        if policy.get("whenDeleted") == "Delete":
            claim_meta["ownerReferences"] = [owner_reference(sts)]
        body = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": claim_meta,
            "spec": clone(template.get("spec") or {}),
        }
        try:
            self.ctx.registry.create(PVCS, meta["namespace"], body, manager=_CONTROLLER, internal=True)
        except ApiError as exc:
            if exc.reason == "AlreadyExists":
                return True
            self.ctx.events.record(
                sts,
                "Warning",
                "FailedCreate",
                f"create Claim {claim_name} for Pod {pod_name} "
                f"in StatefulSet {meta['name']} failed error: {exc.message}",
                component="statefulset-controller",
            )
            return False
        self.ctx.events.record(
            sts,
            "Normal",
            "SuccessfulCreate",
            f"create Claim {claim_name} Pod {pod_name} in StatefulSet {meta['name']} success",
            component="statefulset-controller",
        )
        return True

    def _delete_pod(self, sts: dict, pod: dict) -> None:
        try:
            self.ctx.registry.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
        except ApiError:
            return
        self.ctx.events.record(
            sts,
            "Normal",
            "SuccessfulDelete",
            f"delete Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']} successful",
            component="statefulset-controller",
        )

    def _delete_scaled_claims(self, sts: dict, pods: dict[int, dict], replicas: int) -> None:
        policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
        if policy.get("whenScaled") != "Delete":
            return
        meta = sts["metadata"]
        prefixes = [f"{t['metadata']['name']}-{meta['name']}-" for t in sts["spec"].get("volumeClaimTemplates") or ()]
        claims, _ = self.ctx.store.list(PVCS, meta["namespace"])
        for claim in claims:
            claim_name = claim["metadata"]["name"]
            for prefix in prefixes:
                suffix = claim_name[len(prefix) :]
                if (
                    claim_name.startswith(prefix)
                    and suffix.isdigit()
                    and int(suffix) >= replicas
                    and int(suffix) not in pods
                    and not deleting(claim)
                ):
                    try:
                        self.ctx.registry.delete(PVCS, meta["namespace"], claim_name)
                    except ApiError:
                        pass

    def _status(self, sts: dict, pods: dict[int, dict], replicas: int, revision: str) -> None:
        live = [p for p in pods.values() if not deleting(p)]
        ready = sum(1 for p in live if pod_ready(p))
        updated = sum(1 for p in live if labels_of(p).get("controller-revision-hash") == revision)
        current_revision = (sts.get("status") or {}).get("currentRevision") or revision
        if updated == replicas and ready == replicas and len(live) == replicas:
            current_revision = revision
        current = sum(1 for p in live if labels_of(p).get("controller-revision-hash") == current_revision)
        status = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(live),
            "readyReplicas": ready,
            "currentReplicas": current,
            "updatedReplicas": updated,
            "currentRevision": current_revision,
            "updateRevision": revision,
            "collisionCount": 0,
            "availableReplicas": ready,
        }
        status = {k: v for k, v in status.items() if v or k in ("replicas", "availableReplicas")}
        _write_status(self.ctx, STATEFULSETS, sts, status)


def _write_status(ctx: Context, resource, obj: dict, status: dict, ignore_times: bool = False) -> None:
    """Write a workload's status, unless it would not change."""
    old = obj.get("status") or {}
    if old == status:
        return
    if ignore_times and _without_times(old) == _without_times(status):
        return
    meta = obj["metadata"]

    def set_status(o: dict) -> None:
        o["status"] = status

    ctx.registry.mutate(resource, meta["namespace"], meta["name"], set_status)


def _without_times(status: dict) -> dict:
    out = dict(status)
    out["conditions"] = [
        {k: v for k, v in c.items() if k not in ("lastUpdateTime", "lastTransitionTime")}
        for c in status.get("conditions") or ()
    ]
    return out
