"""The Job controller, simulated: runs pods to completion, counts successes and
failures, and marks the Job Complete (or Failed past its backoffLimit, or past its
activeDeadlineSeconds, when its pods are deleted)."""

from __future__ import annotations

from ..errors import ApiError
from ..resources import JOBS, PODS
from ..util import now, set_condition
from .base import Context, deleting, owned, pod_ready
from .workloads import _pod_from_template

_CONTROLLER = "job-controller"


class JobController:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def reconcile(self, namespace: str, name: str) -> float | None:
        job = self.ctx.store.get(JOBS, namespace, name)
        if job is None or deleting(job):
            return None
        spec, status = job.get("spec") or {}, dict(job.get("status") or {})
        if _finished(job):
            self.ctx.forget("active:" + job["metadata"]["uid"])
            return self._ttl(job)
        pods = owned(self.ctx.store, job, "Pod")
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        succeeded = phases.count("Succeeded")
        failed = phases.count("Failed")
        active = [
            p for p, phase in zip(pods, phases, strict=True) if phase not in ("Succeeded", "Failed") and not deleting(p)
        ]
        completions = spec.get("completions", 1)
        stamp = now()
        status.setdefault("startTime", stamp)
        conditions = status.get("conditions") or []
        retry = None
        deadline = spec.get("activeDeadlineSeconds")
        running_for = self.ctx.clock() - self.ctx.seen("active:" + job["metadata"]["uid"])
        if spec.get("suspend"):
            for pod in active:
                self._delete(pod)
            active = []
        elif succeeded >= completions:
            for pod in active:
                self._delete(pod)
            active = []
            conditions = set_condition(
                conditions,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                stamp=stamp,
                probe_times=True,
            )
            conditions = set_condition(
                conditions,
                "Complete",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                stamp=stamp,
                probe_times=True,
            )
            status["completionTime"] = stamp
            self.ctx.events.record(job, "Normal", "Completed", "Job completed", component=_CONTROLLER)
        elif deadline is not None and running_for >= deadline:
            for pod in active:
                self._delete(pod)
            active = []
            message = "Job was active longer than specified deadline"
            conditions = set_condition(
                conditions, "FailureTarget", "True", "DeadlineExceeded", message, stamp=stamp, probe_times=True
            )
            conditions = set_condition(
                conditions, "Failed", "True", "DeadlineExceeded", message, stamp=stamp, probe_times=True
            )
            self.ctx.events.record(job, "Warning", "DeadlineExceeded", message, component=_CONTROLLER)
        elif failed > spec.get("backoffLimit", 6):
            for pod in active:
                self._delete(pod)
            active = []
            message = "Job has reached the specified backoff limit"
            conditions = set_condition(
                conditions, "FailureTarget", "True", "BackoffLimitExceeded", message, stamp=stamp, probe_times=True
            )
            conditions = set_condition(
                conditions, "Failed", "True", "BackoffLimitExceeded", message, stamp=stamp, probe_times=True
            )
            self.ctx.events.record(job, "Warning", "BackoffLimitExceeded", message, component=_CONTROLLER)
        else:
            want = min(spec.get("parallelism", 1), completions - succeeded) - len(active)
            for _ in range(max(want, 0)):
                body = _pod_from_template(spec.get("template") or {}, namespace, job, generate=f"{name}-")
                try:
                    pod = self.ctx.registry.create(PODS, namespace, body, manager=_CONTROLLER, internal=True)
                except ApiError as exc:
                    self.ctx.events.record(
                        job, "Warning", "FailedCreate", f"Error creating: {exc.message}", component=_CONTROLLER
                    )
                    retry = self.ctx.timing.controller_retry
                    break
                active.append(pod)
                self.ctx.events.record(
                    job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", component=_CONTROLLER
                )
        status.update(
            {
                "active": len(active),
                "ready": sum(1 for p in active if pod_ready(p)),
                "succeeded": succeeded,
                "failed": failed,
                "terminating": sum(1 for p in pods if deleting(p)),
                "uncountedTerminatedPods": {},
                "conditions": conditions,
            }
        )
        if deadline is not None and not _finished({"status": status}) and retry is None:
            retry = max(deadline - running_for, 0.0)  # look again when the deadline passes
        status = {k: v for k, v in status.items() if v not in (0, [], None) or k == "uncountedTerminatedPods"}
        if status != (job.get("status") or {}):

            def set_status(obj: dict) -> None:
                obj["status"] = status

            self.ctx.registry.mutate(JOBS, namespace, name, set_status)
        return retry

    def _delete(self, pod: dict) -> None:
        try:
            self.ctx.registry.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
        except ApiError:
            pass

    def _ttl(self, job: dict) -> float | None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return None
        seen = self.ctx.seen("ttl:" + job["metadata"]["uid"])
        remaining = seen + ttl - self.ctx.clock()
        if remaining > 0:
            return remaining
        self.ctx.forget("ttl:" + job["metadata"]["uid"])
        try:
            self.ctx.registry.delete(
                JOBS, job["metadata"]["namespace"], job["metadata"]["name"], propagation="Background"
            )
        except ApiError:
            pass
        return None


def _finished(job: dict) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or ()
    )
