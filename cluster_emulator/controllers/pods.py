"""The scheduler and kubelet, simulated: pods are scheduled, init containers run,
containers are pulled, start, become ready, crash-loop under a crash fault, finish
(Job pods) and stop when the pod is deleted.

Each pod's lifecycle lives in a `PodSim` (in memory, keyed by uid); the pod's
`status` is computed from it and written only when it differs from the stored
status, so a tick that changes nothing writes nothing.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass, field

from .. import buildkit
from ..programs import program_for
from ..registry import qos_class
from ..resources import PODS, PVCS
from ..util import hex_digest, now, set_condition
from .base import NODE_IP, NODE_NAME, Context, deleting

_NEVER = float("inf")


def normalize_image(image: str) -> str:
    """How the runtime reports an image: `nginx` -> `docker.io/library/nginx:latest`."""
    name = image
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in name:
        name += ":latest"
    return name


@dataclass
class ContainerSim:
    name: str
    image: str
    init: bool = False
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int = 0
    ready: bool = False
    restarts: int = 0
    last_terminated: dict | None = None
    due: float = _NEVER  # next transition: the earliest of the three below while running
    ready_due: float = _NEVER
    crash_due: float = _NEVER
    exit_due: float = _NEVER
    crash_code: int = 1
    crash_reason: str = "Error"
    container_id: str | None = None
    ever_started: bool = False
    run_for: float | None = None  # a container that exits by itself (a simulated build) runs this long
    planned_exit: int = 0
    termination_message: str = ""

    def status(self) -> dict:
        if self.state == "running":
            state = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            state = {
                "terminated": {
                    "exitCode": self.exit_code,
                    "reason": self.reason,
                    "startedAt": self.started_at,
                    "finishedAt": self.finished_at,
                    "containerID": self.container_id,
                }
            }
            if self.termination_message:
                state["terminated"]["message"] = self.termination_message
        else:
            waiting = {"reason": self.reason}
            if self.message:
                waiting["message"] = self.message
            state = {"waiting": waiting}
        out = {
            "name": self.name,
            "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
            "ready": self.ready,
            "restartCount": self.restarts,
            "image": normalize_image(self.image),
            "imageID": f"{normalize_image(self.image).rsplit(':', 1)[0]}@sha256:{hex_digest(self.image)}",
            "started": self.state == "running",
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


@dataclass
class PodSim:
    uid: str
    created: float
    scheduled: bool = False
    start_time: str | None = None
    pod_ip: str | None = None
    init: list[ContainerSim] = field(default_factory=list)
    containers: list[ContainerSim] = field(default_factory=list)
    init_index: int = 0
    terminating: bool = False
    kill_due: float = _NEVER
    restart_policy: str = "Always"


class PodController:
    """Schedules and runs pods."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.sims: dict[tuple[str, str], PodSim] = {}
        self._ips = itertools.count(int(ipaddress.ip_address("10.244.0.10")))
        self.waiting_for_claim: dict[tuple[str, str], set[str]] = {}

    def reconcile(self, namespace: str, name: str) -> float | None:
        pod = self.ctx.store.get(PODS, namespace, name)
        key = (namespace, name)
        sim = self.sims.get(key)
        if pod is None:
            self.sims.pop(key, None)
            if self.ctx.logs is not None:
                self.ctx.logs.forget_pod(namespace, name)
            return None
        uid = pod["metadata"]["uid"]
        if sim is None or sim.uid != uid:
            sim = PodSim(uid, self.ctx.clock(), restart_policy=(pod.get("spec") or {}).get("restartPolicy", "Always"))
            self.sims[key] = sim
        now_ = self.ctx.clock()
        if deleting(pod):
            return self._terminate(pod, sim, now_)
        if not sim.scheduled:
            wait = self._schedule(pod, sim, now_)
            if not sim.scheduled:
                return wait
            pod = self.ctx.store.get(PODS, namespace, name)
            if pod is None:
                return None
        self._advance(pod, sim, now_)
        self._write_status(pod, sim)
        due = min([c.due for c in sim.init + sim.containers] + [_NEVER])
        return None if due == _NEVER else max(due - self.ctx.clock(), 0.0)

    # -- scheduling ------------------------------------------------------------------------------------

    def _schedule(self, pod: dict, sim: PodSim, now_: float) -> float | None:
        """Bind the pod to the node once its claims are bound (sets `sim.scheduled`).
        Returns how long to wait before trying again; None to wait for a claim to change."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        if spec.get("nodeName"):
            sim.scheduled = True
            self._setup(pod, sim)
            return None
        rule = self.ctx.faults.schedule_rule(pod)
        if rule is not None:
            self._unschedulable(pod, rule.message)
            return None
        problem = self._claim_problem(pod)
        if problem:

            def unschedulable(p: dict) -> None:
                status = p.setdefault("status", {})
                status["conditions"] = set_condition(
                    status.get("conditions") or [], "PodScheduled", "False", "Unschedulable", problem, probe_times=True
                )

            before = self.ctx.store.get(PODS, meta["namespace"], meta["name"])
            self.ctx.registry.mutate(PODS, meta["namespace"], meta["name"], unschedulable)
            if before is not None and not _has_condition(before, "PodScheduled", "False"):
                self.ctx.events.record(
                    pod,
                    "Warning",
                    "FailedScheduling",
                    f"0/1 nodes are available: {problem}. "
                    "preemption: 0/1 nodes are available: 1 Preemption is not helpful for "
                    "scheduling.",
                    component="default-scheduler",
                )
            return None
        due = sim.created + self.ctx.timing.schedule_delay
        if now_ < due:
            return due - now_
        sim.pod_ip = str(ipaddress.ip_address(next(self._ips)))
        sim.start_time = now()

        def bind(p: dict) -> None:
            p["spec"]["nodeName"] = NODE_NAME
            status = p.setdefault("status", {})
            status["conditions"] = set_condition(
                status.get("conditions") or [], "PodScheduled", "True", probe_times=True
            )

        bound = self.ctx.registry.mutate(PODS, meta["namespace"], meta["name"], bind)
        if bound is None:
            return None
        sim.scheduled = True
        self.ctx.events.record(
            bound,
            "Normal",
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {NODE_NAME}",
            component="default-scheduler",
        )
        self._setup(bound, sim)
        return None

    def _unschedulable(self, pod: dict, reason: str) -> None:
        """As the scheduler reports a pod no node fits: the condition, and one event when it starts."""
        meta = pod["metadata"]
        message = (
            f"0/1 nodes are available: {reason}. preemption: 0/1 nodes are available: "
            "1 No preemption victims found for incoming pod."
        )

        def unschedulable(p: dict) -> None:
            status = p.setdefault("status", {})
            status["phase"] = "Pending"
            status["conditions"] = set_condition(
                status.get("conditions") or [], "PodScheduled", "False", "Unschedulable", message, probe_times=True
            )

        before = self.ctx.store.get(PODS, meta["namespace"], meta["name"])
        self.ctx.registry.mutate(PODS, meta["namespace"], meta["name"], unschedulable)
        if before is not None and not _has_condition(before, "PodScheduled", "False"):
            self.ctx.events.record(pod, "Warning", "FailedScheduling", message, component="default-scheduler")

    def _claim_problem(self, pod: dict) -> str | None:
        namespace = pod["metadata"]["namespace"]
        for volume in (pod.get("spec") or {}).get("volumes") or ():
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pvc = self.ctx.store.get(PVCS, namespace, claim)
            if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound":
                self.waiting_for_claim.setdefault((namespace, claim), set()).add(pod["metadata"]["name"])
                if pvc is None:
                    return f'persistentvolumeclaim "{claim}" not found'
                return "pod has unbound immediate PersistentVolumeClaims"
        return None

    def claim_changed(self, namespace: str, claim: str) -> None:
        """A claim changed: re-check the pods waiting for it."""
        for name in self.waiting_for_claim.pop((namespace, claim), ()):
            self.ctx.enqueue((PODS.key, namespace, name))

    def _setup(self, pod: dict, sim: PodSim) -> None:
        spec = pod.get("spec") or {}
        sim.restart_policy = spec.get("restartPolicy", "Always")
        sim.pod_ip = sim.pod_ip or str(ipaddress.ip_address(next(self._ips)))
        sim.start_time = sim.start_time or now()
        start = self.ctx.clock()
        sim.init = [
            ContainerSim(c["name"], c.get("image", ""), init=True, reason="PodInitializing")
            for c in spec.get("initContainers") or ()
        ]
        waiting = "PodInitializing" if sim.init else "ContainerCreating"
        sim.containers = [
            ContainerSim(c["name"], c.get("image", ""), reason=waiting) for c in spec.get("containers") or ()
        ]
        if sim.init:
            sim.init[0].reason = "PodInitializing"
            sim.init[0].due = start + self.ctx.timing.pod_start_delay
        else:
            for c in sim.containers:
                c.due = start + self.ctx.timing.pod_start_delay

    # -- running ---------------------------------------------------------------------------------------

    def _advance(self, pod: dict, sim: PodSim, now_: float) -> None:
        """Apply every transition that is due: init containers one after the other, then the containers."""
        self._pick_up_faults(pod, sim, now_)
        for _ in range(1000):  # bounded: every pass makes at least one transition
            progressed = False
            if sim.init_index < len(sim.init):
                c = sim.init[sim.init_index]
                if c.due <= now_:
                    progressed = True
                    self._step(pod, sim, c, now_)
                    if c.state == "terminated" and c.exit_code == 0:
                        sim.init_index += 1
                        upcoming = sim.init[sim.init_index : sim.init_index + 1] or sim.containers
                        for nxt in upcoming:
                            nxt.reason = "PodInitializing" if nxt.init else "ContainerCreating"
                            nxt.due = now_ + self.ctx.timing.pod_start_delay
            else:
                for c in sim.containers:
                    if c.due <= now_:
                        progressed = True
                        self._step(pod, sim, c, now_)
            if not progressed:
                return

    def _pick_up_faults(self, pod: dict, sim: PodSim, now_: float) -> None:
        """A crash fault added while a container runs makes it crash soon; a readiness fault makes a
        ready one fail its next probe."""
        for c in sim.containers:
            if c.state == "running" and c.ready and self.ctx.faults.readiness_rule(pod, c.name) is not None:
                c.ready_due = now_
                c.due = min(c.due, c.ready_due)
        for c in sim.init + sim.containers:
            if c.state == "running" and c.crash_due == _NEVER:
                rule = self.ctx.faults.crash_rule(pod, c.name)
                if rule is not None:
                    c.crash_due, c.crash_code = now_ + self.ctx.timing.crash_run_delay, rule.exit_code
                    c.crash_reason = rule.reason
                    c.due = min(c.due, c.crash_due)

    def _step(self, pod: dict, sim: PodSim, c: ContainerSim, now_: float) -> None:
        """One transition of one container."""
        timing = self.ctx.timing
        if c.state == "waiting":  # created, or back from CrashLoopBackOff
            pull = None if c.ever_started else self.ctx.faults.pull_rule(pod, c.name)
            if pull is not None:
                self._pull_failed(pod, c, now_, pull.message)
                return
            self._start(pod, c, now_, init=c.init)
            rule = self.ctx.faults.crash_rule(pod, c.name)
            c.crash_due = now_ + timing.crash_run_delay if rule else _NEVER
            c.crash_code = rule.exit_code if rule else 1
            c.crash_reason = rule.reason if rule else "Error"
            if c.init:
                # An init container under a crash fault fails instead of completing (a failed git clone).
                c.exit_due = now_ + timing.init_container_delay if rule is None else _NEVER
                c.ready_due = _NEVER
            elif c.run_for is not None:
                c.exit_due = now_ + c.run_for
                c.ready_due = now_ + timing.ready_delay if rule is None else _NEVER
            else:
                c.exit_due = now_ + timing.job_run_delay if sim.restart_policy != "Always" else _NEVER
                c.ready_due = now_ + timing.ready_delay if rule is None else _NEVER
        elif c.state == "running":
            if c.crash_due <= now_:
                if self.ctx.faults.crash_rule(pod, c.name) is not None:
                    self._crash(pod, sim, c, now_)
                    return
                c.crash_due = _NEVER  # healed before it crashed
                if not c.ready and not c.init:
                    c.ready_due = now_ + timing.ready_delay
            elif c.exit_due <= now_:
                self._finish(c, c.planned_exit, "Completed" if c.planned_exit == 0 else "Error")
                self._end_log(pod, c)
                return
            elif c.ready_due <= now_:
                failing = self.ctx.faults.readiness_rule(pod, c.name)
                if failing is None:
                    c.ready, c.ready_due = True, _NEVER
                else:
                    # The kubelet probes again every period and reports each failure; it never kills.
                    self.ctx.events.record(
                        pod,
                        "Warning",
                        "Unhealthy",
                        f"Readiness probe failed: {failing.message}",
                        field_path=f"spec.containers{{{c.name}}}",
                    )
                    c.ready, c.ready_due = False, now_ + timing.crash_backoff
        else:
            c.due = _NEVER
            return
        c.due = min(c.ready_due, c.crash_due, c.exit_due)

    def _start(self, pod: dict, c: ContainerSim, now_: float, init: bool = False) -> None:
        kind = "initContainers" if init else "containers"
        index = next((i for i, spec in enumerate(pod["spec"].get(kind) or ()) if spec.get("name") == c.name), 0)
        field_path = f"spec.{kind}{{{c.name}}}"
        if not c.ever_started:
            self.ctx.events.record(pod, "Normal", "Pulling", f'Pulling image "{c.image}"', field_path=field_path)
            self.ctx.events.record(
                pod,
                "Normal",
                "Pulled",
                f'Successfully pulled image "{c.image}" in {self.ctx.timing.pod_start_delay:.3g}s '
                f"({self.ctx.timing.pod_start_delay:.3g}s including waiting). Image size: "
                f"{40_000_000 + index * 1_000_000} bytes.",
                field_path=field_path,
            )
        else:
            self.ctx.events.record(
                pod,
                "Normal",
                "Pulled",
                f'Container image "{c.image}" already present on machine',
                field_path=field_path,
            )
        self.ctx.events.record(pod, "Normal", "Created", f"Created container: {c.name}", field_path=field_path)
        self.ctx.events.record(pod, "Normal", "Started", f"Started container {c.name}", field_path=field_path)
        c.state, c.reason, c.message = "running", "", None
        c.started_at, c.finished_at = now(), None
        c.ever_started = True
        c.container_id = "containerd://" + hex_digest(f"{pod['metadata']['uid']}/{c.name}/{c.restarts}")
        self._write_log(pod, c, (pod["spec"].get(kind) or [{}])[index], now_)

    def _write_log(self, pod: dict, c: ContainerSim, spec: dict, now_: float) -> None:
        """What the container prints: a simulated build's BuildKit progress (written ahead, each line
        visible at its moment), else the start-up its command would print (`programs`) between two
        lines saying that nothing really runs, then (with `log_line_interval`) a line now and then."""
        logs = self.ctx.logs
        if logs is None:
            return
        meta = pod["metadata"]
        where = (meta["namespace"], meta["name"], c.name, c.restarts)
        if not c.init and buildkit.is_build(spec):
            rule = self.ctx.faults.build_failure(pod)
            build = buildkit.simulate(
                spec,
                uid=meta["uid"],
                step_delay=self.ctx.timing.build_step_delay,
                fail_at=rule.step if rule else None,
                message=rule.message if rule else "",
            )
            for offset, line in build.lines:
                logs.write(*where, line, at=now_ + offset)
            c.run_for, c.planned_exit, c.termination_message = (
                build.duration,
                build.exit_code,
                build.termination_message,
            )
            return
        program = program_for(spec, init=c.init)
        logs.write(
            *where,
            "\n".join(
                (
                    f"emulated container {c.name} of pod {meta['namespace']}/{meta['name']} started",
                    *program.startup,
                    "listening (this is a simulated cluster: no process actually runs)",
                )
            ),
            at=now_,
        )
        interval = self.ctx.timing.log_line_interval
        if interval > 0 and not c.init:
            seed = f"{meta['uid']}/{c.name}/{c.restarts}"
            logs.chatter(*where, interval=interval, start=now_, line=lambda n, wall: program.periodic(n, seed, wall))

    def _end_log(self, pod: dict, c: ContainerSim) -> None:
        if self.ctx.logs is not None:
            meta = pod["metadata"]
            self.ctx.logs.end(meta["namespace"], meta["name"], c.name, c.restarts)

    def _pull_failed(self, pod: dict, c: ContainerSim, now_: float, refusal: str) -> None:
        """The kubelet's pull failed: ErrImagePull, then ImagePullBackOff until the next try, as it
        alternates on a real node, with its Failed and BackOff events."""
        image = normalize_image(c.image)
        kind = "initContainers" if c.init else "containers"
        field_path = f"spec.{kind}{{{c.name}}}"
        error = f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": {refusal}'
        if c.reason != "ErrImagePull":
            self.ctx.events.record(pod, "Normal", "Pulling", f'Pulling image "{c.image}"', field_path=field_path)
            self.ctx.events.record(
                pod, "Warning", "Failed", f'Failed to pull image "{c.image}": {error}', field_path=field_path
            )
            self.ctx.events.record(pod, "Warning", "Failed", "Error: ErrImagePull", field_path=field_path)
            c.reason, c.message = "ErrImagePull", error
        else:
            backoff = f'Back-off pulling image "{c.image}"'
            self.ctx.events.record(pod, "Normal", "BackOff", backoff, field_path=field_path)
            self.ctx.events.record(pod, "Warning", "Failed", "Error: ImagePullBackOff", field_path=field_path)
            c.reason, c.message = "ImagePullBackOff", f'Back-off pulling image "{c.image}": ErrImagePull: {error}'
        c.due = now_ + self.ctx.timing.crash_backoff

    def _finish(self, c: ContainerSim, code: int, reason: str) -> None:
        c.state, c.exit_code, c.reason = "terminated", code, reason
        c.finished_at = now()
        c.ready = False
        c.due = c.ready_due = c.crash_due = c.exit_due = _NEVER

    def _crash(self, pod: dict, sim: PodSim, c: ContainerSim, now_: float) -> None:
        timing = self.ctx.timing
        meta = pod["metadata"]
        rule = self.ctx.faults.crash_rule(pod, c.name)
        if rule is not None and rule.liveness and not c.init:
            # The kubelet's probe failed failureThreshold times in a row: it says so, then kills it.
            field_path = f"spec.containers{{{c.name}}}"
            for _ in range(_failure_threshold(pod, c.name)):
                self.ctx.events.record(
                    pod, "Warning", "Unhealthy", f"Liveness probe failed: {rule.liveness}", field_path=field_path
                )
            self.ctx.events.record(
                pod,
                "Normal",
                "Killing",
                f"Container {c.name} failed liveness probe, will be restarted",
                field_path=field_path,
            )
        terminated = {
            "exitCode": c.crash_code,
            "reason": c.crash_reason,
            "startedAt": c.started_at,
            "finishedAt": now(),
            "containerID": c.container_id,
        }
        if self.ctx.logs is not None:
            kind = "initContainers" if c.init else "containers"
            spec = next((s for s in pod["spec"].get(kind) or () if s.get("name") == c.name), {})
            last_words = program_for(spec, init=c.init).crash(c.crash_code)
            self.ctx.logs.write(meta["namespace"], meta["name"], c.name, c.restarts, last_words)
        self._end_log(pod, c)
        if sim.restart_policy == "Never":
            self._finish(c, c.crash_code, c.crash_reason)
            return
        c.last_terminated = terminated
        c.restarts += 1
        backoff = min(timing.crash_backoff * 2 ** (c.restarts - 1), timing.crash_backoff_cap)
        c.state, c.ready, c.reason = "waiting", False, "CrashLoopBackOff"
        shown = max(int(round(backoff)), 10 * 2 ** min(c.restarts - 1, 5))
        c.message = (
            f"back-off {min(shown, 300)}s restarting failed container={c.name} "
            f"pod={meta['name']}_{meta['namespace']}({meta['uid']})"
        )
        c.crash_due = c.ready_due = c.exit_due = _NEVER
        c.due = now_ + backoff
        kind = "initContainers" if c.init else "containers"
        self.ctx.events.record(
            pod,
            "Warning",
            "BackOff",
            f"Back-off restarting failed container {c.name} in pod {meta['name']}_{meta['namespace']}({meta['uid']})",
            field_path=f"spec.{kind}{{{c.name}}}",
        )

    # -- status ------------------------------------------------------------------------------------------

    def _write_status(self, pod: dict, sim: PodSim) -> None:
        desired = self._status(pod, sim)
        if pod.get("status") == desired:
            return
        meta = pod["metadata"]

        def set_status(p: dict) -> None:
            p["status"] = self._status(p, sim)

        self.ctx.registry.mutate(PODS, meta["namespace"], meta["name"], set_status)

    def _status(self, pod: dict, sim: PodSim) -> dict:
        old = pod.get("status") or {}
        conditions = old.get("conditions") or []
        initialized = sim.init_index >= len(sim.init)
        apps = sim.containers
        all_ready = bool(apps) and all(c.ready for c in apps)
        finished = bool(apps) and all(c.state == "terminated" for c in apps)
        if finished and sim.restart_policy != "Always":
            phase = "Succeeded" if all(c.exit_code == 0 for c in apps) else "Failed"
        elif any(c.ever_started for c in apps):
            phase = "Running"
        elif (
            sim.init
            and sim.restart_policy == "Never"
            and any(c.state == "terminated" and c.exit_code for c in sim.init)
        ):
            phase = "Failed"
        else:
            phase = "Pending"
        unready = [c.name for c in apps if not c.ready]
        conditions = set_condition(conditions, "PodReadyToStartContainers", "True", probe_times=True)
        if initialized:
            conditions = set_condition(conditions, "Initialized", "True", probe_times=True)
        else:
            pending = [c.name for c in sim.init[sim.init_index :]]
            conditions = set_condition(
                conditions,
                "Initialized",
                "False",
                "ContainersNotInitialized",
                f"containers with incomplete status: [{' '.join(pending)}]",
                probe_times=True,
            )
        if phase in ("Succeeded", "Failed"):
            ready_args = ("False", "PodCompleted", None)
        elif all_ready and not sim.terminating:
            ready_args = ("True", None, None)
        else:
            ready_args = ("False", "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]")
        conditions = set_condition(conditions, "Ready", *ready_args, probe_times=True)
        conditions = set_condition(conditions, "ContainersReady", *ready_args, probe_times=True)
        conditions = set_condition(conditions, "PodScheduled", "True", probe_times=True)
        order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
        conditions.sort(key=lambda c: order.index(c["type"]) if c["type"] in order else len(order))
        status = {
            "observedGeneration": pod["metadata"].get("generation", 1),
            "phase": phase,
            "conditions": conditions,
            "hostIP": NODE_IP,
            "hostIPs": [{"ip": NODE_IP}],
            "podIP": sim.pod_ip,
            "podIPs": [{"ip": sim.pod_ip}],
            "startTime": sim.start_time,
            "containerStatuses": [c.status() for c in apps],
            "qosClass": old.get("qosClass") or qos_class(pod.get("spec") or {}),
        }
        if sim.init:
            status["initContainerStatuses"] = [c.status() for c in sim.init]
        return status

    # -- termination ---------------------------------------------------------------------------------------

    def _terminate(self, pod: dict, sim: PodSim, now_: float) -> float | None:
        meta = pod["metadata"]
        if not sim.terminating:
            sim.terminating = True
            grace = meta.get("deletionGracePeriodSeconds")
            grace = 30 if grace is None else grace
            sim.kill_due = now_ + min(grace, self.ctx.timing.pod_termination_delay)
            for c in sim.containers:
                if c.state == "running":
                    self.ctx.events.record(
                        pod,
                        "Normal",
                        "Killing",
                        f"Stopping container {c.name}",
                        field_path=f"spec.containers{{{c.name}}}",
                    )
                c.ready = False
                c.due = _NEVER
            if sim.scheduled:
                self._write_status(pod, sim)
        if now_ < sim.kill_due:
            return sim.kill_due - now_
        for c in sim.containers:
            if c.state != "terminated":
                self._end_log(pod, c)
                self._finish(c, 0 if c.state == "running" else 137, "Completed" if c.state == "running" else "Error")
        if meta.get("finalizers"):
            if sim.scheduled:
                self._write_status(self.ctx.store.get(PODS, meta["namespace"], meta["name"]) or pod, sim)
            return None
        self.ctx.registry.finish_deletion(PODS, meta["namespace"], meta["name"])
        return None

    def claims_of(self, pod: dict) -> list[str]:
        return [
            v["persistentVolumeClaim"]["claimName"]
            for v in (pod.get("spec") or {}).get("volumes") or ()
            if (v.get("persistentVolumeClaim") or {}).get("claimName")
        ]


def _has_condition(obj: dict, type_: str, status: str) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == status for c in (obj.get("status") or {}).get("conditions") or ()
    )


def _failure_threshold(pod: dict, container: str) -> int:
    """How many failed liveness probes in a row the kubelet waits for (the probe's, else 3)."""
    for spec in (pod.get("spec") or {}).get("containers") or ():
        if spec.get("name") == container:
            return int((spec.get("livenessProbe") or {}).get("failureThreshold") or 3)
    return 3
