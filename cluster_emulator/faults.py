"""Fault injection: make the emulated cluster misbehave the ways real ones do.

- `crash()` / `heal()`: containers of matching pods crash-loop (CrashLoopBackOff) or recover;
  `oom()` is a crash the kernel's OOM killer causes (exit 137, reason OOMKilled); a crash of an
  init container (`containers=["clone"]`, exit 128) is how a failed `git clone` looks;
  `liveness_failure()` is the kubelet killing a container whose liveness probe fails;
  `readiness_failure()` a container that runs but fails its readiness probe (never killed).
- `image_pull_error()`: matching containers cannot pull their image (ErrImagePull, ImagePullBackOff).
- `unschedulable()`: matching pods stay Pending, the scheduler saying why (FailedScheduling).
- `fail_requests()`: the API answers with an error Status (500, 503, 429 with Retry-After, ...);
  `answered()` lists the requests it answered so.
- `hang()`: requests stall before being answered.
- `expire_history()`: watches resuming from an older resourceVersion get 410 Gone.
- `fail_builds()` / `heal_builds()`: simulated BuildKit builds of matching pods fail at a chosen step.
- `app_status()`, `app_unreachable()`, `app_garbage()` / `heal_app_status()`: what the stand-in app
  behind the service proxy (`proxy.py`) answers: its own item red or yellow, connections refused, or
  a body that is not Diploi's status format.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ApiError
from .selectors import LabelSelector, from_dict, parse_label_selector
from .store import Store

_MESSAGES = {
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected fault",
    502: "Bad Gateway",
    503: "the server is currently unable to handle the request",
    504: "Timeout: request did not complete within requested timeout - context deadline exceeded",
}


@dataclass
class CrashRule:
    namespace: str | None
    selector_key: object
    selector: LabelSelector
    exit_code: int
    containers: frozenset[str] | None
    reason: str = "Error"  # the terminated state's reason: "Error", or "OOMKilled"
    liveness: str = ""  # the kubelet kills it for this failed liveness probe ("" = it crashes by itself)

    def matches(self, pod: dict, container: str | None) -> bool:
        meta = pod["metadata"]
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if container is not None and self.containers is not None and container not in self.containers:
            return False
        return self.selector.matches(meta.get("labels"))


@dataclass
class BuildFailRule:
    namespace: str | None
    selector: LabelSelector
    step: int
    message: str

    def matches(self, pod: dict) -> bool:
        meta = pod["metadata"]
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return self.selector.matches(meta.get("labels"))


@dataclass
class PullRule(CrashRule):
    """Pulling the image is refused, with the registry's message."""

    message: str = ""


@dataclass
class ReadinessRule(CrashRule):
    """The container runs, and its readiness probe fails with the kubelet's ``message``."""

    message: str = ""


@dataclass
class ScheduleRule(CrashRule):
    """No node fits the pod, for the scheduler's reason (``message``, e.g. "1 Insufficient cpu")."""

    message: str = ""


@dataclass
class _RequestRule:
    methods: frozenset[str] | None
    path_contains: str | None
    remaining: int | None
    until: float | None

    def applies(self, method: str, path: str, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return self.path_contains is None or self.path_contains in path

    def spend(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1

    def spent(self, now: float) -> bool:
        return (self.remaining is not None and self.remaining <= 0) or (self.until is not None and now >= self.until)


@dataclass(frozen=True)
class AnsweredFault:
    """A request answered with an injected error: when (`time.monotonic()`), what, and the status."""

    at: float
    method: str
    path: str
    status: int


@dataclass
class _FailRule(_RequestRule):
    status: int = 500
    retry_after: int = 1
    message: str | None = None


@dataclass
class AppStatusRule:
    """What the stand-in app of a Service answers through the service proxy."""

    namespace: str | None
    service: str | None
    mode: str  # "red", "yellow", "unreachable" or "garbage"
    message: str = ""
    body: bytes = b""

    def matches(self, namespace: str, service: str) -> bool:
        return self.namespace in (None, namespace) and self.service in (None, service)


@dataclass
class _HangRule(_RequestRule):
    seconds: float = 0.0


def _selector(selector) -> LabelSelector:
    if selector is None:
        return LabelSelector()
    if isinstance(selector, str):
        return parse_label_selector(selector)
    return from_dict(selector)


def _methods(methods) -> frozenset[str] | None:
    if methods is None:
        return None
    if isinstance(methods, str):
        methods = [methods]
    return frozenset(m.upper() for m in methods)


class Faults:
    """The fault switches of one emulator (`emu.faults`). Thread-safe."""

    def __init__(self, store: Store, pods_changed: Callable[[str | None], None] = lambda namespace: None):
        self._store = store
        self._pods_changed = pods_changed
        self._lock = threading.Lock()
        self._crashes: list[CrashRule] = []
        self._fails: list[_FailRule] = []
        self._hangs: list[_HangRule] = []
        self._build_failures: list[BuildFailRule] = []
        self._app_status: list[AppStatusRule] = []
        self._answered: deque[AnsweredFault] = deque(maxlen=10000)

    # -- pods ------------------------------------------------------------------------------------------

    def crash(
        self,
        namespace: str | None,
        selector: dict | str | None = None,
        exit_code: int = 1,
        containers: list[str] | None = None,
        reason: str = "Error",
    ) -> None:
        """Containers of matching pods (existing and future) crash-loop: they run briefly, exit with
        `exit_code` and wait in CrashLoopBackOff, restartCount growing. `namespace=None` means all,
        `selector` is a label dict or selector string, `containers` limits it to these container names."""
        self._add(namespace, selector, containers, CrashRule, exit_code=exit_code, reason=reason)

    def oom(self, namespace: str | None, selector: dict | str | None = None, containers: list[str] | None = None):
        """Containers of matching pods are killed for exceeding their memory limit, again and again."""
        self.crash(namespace, selector, exit_code=137, containers=containers, reason="OOMKilled")

    def liveness_failure(
        self,
        namespace: str | None,
        selector: dict | str | None = None,
        containers: list[str] | None = None,
        message: str = "HTTP probe failed with statuscode: 500",
    ) -> None:
        """Matching containers run but never turn ready, and their liveness probe fails: the kubelet
        reports it (Unhealthy: "Liveness probe failed: <message>", aggregated with a count), kills the
        container ("failed liveness probe, will be restarted"; exit 137) and restarts it, in
        CrashLoopBackOff between the kills, as a real node does."""
        self._add(namespace, selector, containers, CrashRule, exit_code=137, reason="Error", liveness=message)

    def readiness_failure(
        self,
        namespace: str | None,
        selector: dict | str | None = None,
        containers: list[str] | None = None,
        message: str = "HTTP probe failed with statuscode: 503",
    ) -> None:
        """Matching containers run but their readiness probe fails (existing ones turn unready): the
        kubelet reports each failed probe (Unhealthy: "Readiness probe failed: <message>", aggregated
        with a count) and, unlike a liveness probe, never kills them. Healed, they turn ready again."""
        self._add(namespace, selector, containers, ReadinessRule, exit_code=0, message=message)

    def image_pull_error(
        self,
        namespace: str | None,
        selector: dict | str | None = None,
        containers: list[str] | None = None,
        message: str = "pull access denied, repository does not exist or may require authorization: "
        "server message: insufficient_scope: authorization failed",
    ) -> None:
        """Matching containers that have not started yet cannot pull their image: ErrImagePull, then
        ImagePullBackOff, with Failed and BackOff events, as a kubelet reports a registry's refusal."""
        self._add(namespace, selector, containers, PullRule, exit_code=0, message=message)

    def unschedulable(
        self, namespace: str | None, selector: dict | str | None = None, reason: str = "1 Insufficient cpu"
    ) -> None:
        """Matching pods not yet scheduled stay Pending: PodScheduled False (Unschedulable) and a
        FailedScheduling event saying "0/1 nodes are available: <reason>."."""
        self._add(namespace, selector, None, ScheduleRule, exit_code=0, message=reason)

    def _add(self, namespace, selector, containers, kind, **fields) -> None:
        rule = kind(
            namespace,
            _freeze(selector),
            _selector(selector),
            containers=frozenset(containers) if containers else None,
            **fields,
        )
        with self._lock:
            self._crashes.append(rule)
        self._pods_changed(namespace)

    def fail_builds(
        self, namespace: str | None = None, selector: dict | str | None = None, *, step: int = 4, message: str = ""
    ) -> None:
        """Simulated builds (BuildKit containers) of matching pods that start from now on fail at ``step``
        (1-based) with ``message`` (default: BuildKit's "did not complete successfully: exit code: 1")."""
        if step < 1:
            raise ValueError("step counts from 1")
        with self._lock:
            self._build_failures.append(BuildFailRule(namespace, _selector(selector), step, message))

    def heal_builds(self) -> None:
        """Builds that start from now on succeed again."""
        with self._lock:
            self._build_failures.clear()

    def build_failure(self, pod: dict) -> BuildFailRule | None:
        with self._lock:
            return next((rule for rule in self._build_failures if rule.matches(pod)), None)

    def heal(self, namespace: str | None, selector: dict | str | None = None) -> None:
        """Clear pod faults of that namespace (only those with this selector, when given): crash-looping
        containers come up on their next retry, image pulls succeed, pods get scheduled."""
        key = _freeze(selector)
        with self._lock:
            self._crashes = [
                r
                for r in self._crashes
                if not (r.namespace == namespace and (selector is None or r.selector_key == key))
            ]
        self._pods_changed(namespace)

    def crash_rule(self, pod: dict, container: str) -> CrashRule | None:
        """The crash fault a container is under, if any (used by the pod simulation)."""
        return self._rule(CrashRule, pod, container)

    def readiness_rule(self, pod: dict, container: str) -> ReadinessRule | None:
        return self._rule(ReadinessRule, pod, container)

    def pull_rule(self, pod: dict, container: str) -> PullRule | None:
        return self._rule(PullRule, pod, container)

    def schedule_rule(self, pod: dict) -> ScheduleRule | None:
        return self._rule(ScheduleRule, pod, None)

    def _rule(self, kind, pod: dict, container: str | None):
        with self._lock:
            for rule in self._crashes:
                if type(rule) is kind and rule.matches(pod, container):
                    return rule
        return None

    # -- the apps behind the service proxy -----------------------------------------------------------------

    def app_status(
        self, namespace: str | None, service: str | None = None, *, status: str = "red", message: str = ""
    ) -> None:
        """The app behind matching Services reports its own item ``status`` ("red" or "yellow") with
        ``message``, in Diploi's status format."""
        if status not in ("red", "yellow"):
            raise ValueError("status is red or yellow")
        self._add_app_rule(AppStatusRule(namespace, service, status, message=message))

    def app_unreachable(self, namespace: str | None, service: str | None = None) -> None:
        """Nothing listens behind matching Services: the proxy answers 503 "connection refused"."""
        self._add_app_rule(AppStatusRule(namespace, service, "unreachable"))

    def app_garbage(
        self, namespace: str | None, service: str | None = None, body: bytes = b"<html>Welcome to nginx!</html>"
    ) -> None:
        """The app behind matching Services answers 200 with ``body`` (not Diploi's status format)."""
        self._add_app_rule(AppStatusRule(namespace, service, "garbage", body=body))

    def heal_app_status(self, namespace: str | None = None) -> None:
        """The apps (of that namespace, or all) answer as they normally do again."""
        with self._lock:
            self._app_status = [r for r in self._app_status if namespace is not None and r.namespace != namespace]

    def app_status_rule(self, namespace: str, service: str) -> AppStatusRule | None:
        with self._lock:
            return next((r for r in reversed(self._app_status) if r.matches(namespace, service)), None)

    def _add_app_rule(self, rule: AppStatusRule) -> None:
        with self._lock:
            self._app_status.append(rule)

    # -- API requests -------------------------------------------------------------------------------------

    def fail_requests(
        self,
        status: int = 500,
        count: int | None = None,
        seconds: float | None = None,
        methods: list[str] | str | None = None,
        path_contains: str | None = None,
        retry_after: int = 1,
        message: str | None = None,
        end_watches: bool = False,
    ) -> None:
        """Answer matching requests with a Status error of `status`: the next `count` of them, or all for
        `seconds`, or (neither given) until `clear()`. 429 and 503 carry a Retry-After header.
        Rules apply in the order given: one for 500s now and one for 429s after is an outage, then throttling.
        `end_watches`: open watches end too, as when an API server restarts, so clients meet the fault."""
        until = time.monotonic() + seconds if seconds is not None else None
        if end_watches:
            self._store.close_watchers()
        with self._lock:
            self._fails.append(
                _FailRule(
                    _methods(methods),
                    path_contains,
                    count,
                    until,
                    status=status,
                    retry_after=retry_after,
                    message=message,
                )
            )

    def hang(
        self,
        seconds: float,
        path_contains: str | None = None,
        methods: list[str] | str | None = None,
        count: int | None = None,
        duration: float | None = None,
    ) -> None:
        """Matching requests stall `seconds` before being answered: the next `count` of them, or those
        arriving within `duration` seconds, or (neither given) until `clear()`."""
        until = time.monotonic() + duration if duration is not None else None
        with self._lock:
            self._hangs.append(_HangRule(_methods(methods), path_contains, count, until, seconds=seconds))

    def before_request(self, method: str, path: str) -> tuple[float, ApiError | None]:
        """For the HTTP layer: how long to stall this request, and the error to answer instead, if any."""
        now = time.monotonic()
        stall, error = 0.0, None
        with self._lock:
            for rule in self._hangs:
                if rule.applies(method, path, now):
                    rule.spend()
                    stall = max(stall, rule.seconds)
            for rule in self._fails:
                if rule.applies(method, path, now):
                    rule.spend()
                    error = _status_error(rule)
                    self._answered.append(AnsweredFault(now, method, path, rule.status))
                    break
            self._hangs = [r for r in self._hangs if not r.spent(now)]
            self._fails = [r for r in self._fails if not r.spent(now)]
        return stall, error

    def answered(self) -> list[AnsweredFault]:
        """The requests answered with an injected error (the last 10000), oldest first."""
        with self._lock:
            return list(self._answered)

    # -- watches ------------------------------------------------------------------------------------------

    def expire_history(self) -> None:
        """Forget watch history (like an etcd compaction): resuming from an older resourceVersion gets
        410 Gone (an ERROR event with reason Expired)."""
        self._store.compact()

    def clear(self) -> None:
        """Remove every fault (crash faults included)."""
        with self._lock:
            had_crashes = bool(self._crashes)
            self._crashes, self._fails, self._hangs, self._build_failures = [], [], [], []
            self._app_status = []
        if had_crashes:
            self._pods_changed(None)


def _freeze(selector) -> object:
    if isinstance(selector, dict):
        return tuple(sorted(selector.items()))
    return selector


def _status_error(rule: _FailRule) -> ApiError:
    headers = {}
    details = None
    if rule.status in (429, 503):
        headers["Retry-After"] = str(rule.retry_after)
        details = {"retryAfterSeconds": rule.retry_after}
    message = rule.message or _MESSAGES.get(rule.status, f"injected fault ({rule.status})")
    return ApiError(rule.status, message, details=details, headers=headers)
