"""The cluster watcher: what the cluster does becomes statuses, CPU history and live updates.

One informer thread per kind lists our objects, then watches from the list's
resourceVersion: it resumes after a dropped connection and lists again after
410 Gone. Events update an in-memory cache and mark their deployment dirty;
a recompute loop recomputes a quiet deployment at once (and the cluster's
reaction to that change, which follows within milliseconds), coalesces the
rest of a burst (at most one recompute per deployment per `coalesce` after
those two) and stores the result (`statuses`). Time alone also changes a status (grace
periods), so everything is recomputed now and then. While the cluster cannot be reached, statuses turn "unknown" after
STATUS_STALE_SECONDS. One watcher at a time writes statuses (a lease; the
others stand by, warm). A leased sampler records CPU, and a leased resync loop
sends again the tasks of pending work that were lost (`sweeper`).

Runs as `python manage.py watch_cluster`, or as a thread in standalone mode.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.db.models import Exists, OuterRef, Prefetch, prefetch_related_objects
from django.utils import timezone

from deployments import cpu, progress, statuses
from deployments.appstatus import poller as app_status
from deployments.cluster import errors
from deployments.cluster import labels as L
from deployments.cluster.client import Cluster, WatchEvent
from deployments.cluster.connection import cluster_settings
from deployments.cluster.status import Observation, compute_status
from deployments.drift import drift_correct
from deployments.models import Deployment, DeploymentState, DeploymentStatus, Lease, Operation
from diploi_site.baked import BakedQuery
from diploi_site.database import ConnectionChecks
from diploi_site.metrics import WATCHER_EVENT_LAG_SECONDS
from diploi_site.tracing import trace

logger = logging.getLogger(__name__)

# (kind, label selector): Certificates are made by cert-manager from our
# Ingress and may not carry our labels, so they are matched by namespace.
INFORMERS = (
    ("Namespace", L.OWNED_SELECTOR),
    ("Pod", L.OWNED_SELECTOR),
    ("PersistentVolumeClaim", L.OWNED_SELECTOR),
    ("StatefulSet", L.OWNED_SELECTOR),
    ("Deployment", L.OWNED_SELECTOR),
    ("Job", L.OWNED_SELECTOR),
    ("Ingress", L.OWNED_SELECTOR),
    ("Service", L.OWNED_SELECTOR),
    # The cluster's endpointslice-controller copies a Service's labels (ours) onto its slices.
    ("EndpointSlice", L.OWNED_SELECTOR),
    ("Certificate", None),
    # The kubelet's probe failures (liveness, readiness), which only events tell: matched by namespace.
    ("Event", None),
)
# Kinds listed and watched with a field selector as well (the server filters; events are many).
FIELD_SELECTORS = {"Event": "involvedObject.kind=Pod,reason=Unhealthy"}
# The same drift is corrected at most this often per deployment: the reconcile needs a moment to
# restore it, and the watcher sees the drift until then.
DRIFT_CORRECT_SECONDS = 15
WATCH_TIMEOUT_SECONDS = 240
ACTIVE_STATUSES = (Operation.Status.PENDING, Operation.Status.RUNNING)
# Recomputes a deployment may have at once before the rest of a burst waits (`_take_due`).
COALESCE_BURST = 2
# The periodic pass over every deployment goes this many at a time, so events never wait behind all of it.
FULL_PASS_SLICE = 25
MISSING_API_RETRY_SECONDS = 300
INFORMER_MAX_BACKOFF_SECONDS = 5
# One watcher at a time writes statuses; a standby takes over this soon after the writer died.
STATUS_LEASE_SECONDS = 5
LEASES = ("statuses", "cpu-sampler", "app-status", "resync")  # what one watcher at a time does
STATUS_LEASE_RENEW_SECONDS = 1
# An unchanged status's "last observed" stamp is written at most this often: the events' recomputes
# that change nothing (most of them) then write nothing, and the periodic pass stamps them all.
OBSERVED_STAMP_EVERY = timedelta(seconds=5)


def _key(obj: dict) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


class ObjectCache:
    """Our objects by kind, indexed by namespace (one namespace per deployment). Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str, str], dict] = {}
        self._by_namespace: dict[str, set[tuple[str, str, str]]] = {}
        self._namespace_owner: dict[str, int] = {}
        self._namespace_of_deployment: dict[int, str] = {}  # the other way round
        self._listed: set[str] = set()  # kinds listed at least once: what is missing of them is missing
        self.missing_apis: set[str] = set()  # kinds the cluster does not serve (no cert-manager)

    @staticmethod
    def _namespace_of(obj: dict) -> str:
        meta = obj["metadata"]
        return meta["name"] if obj["kind"] == "Namespace" else meta.get("namespace") or ""

    def deployment_of(self, obj: dict) -> int | None:
        value = (obj["metadata"].get("labels") or {}).get(L.DEPLOYMENT)
        if value and value.isdigit():
            return int(value)
        return self._namespace_owner.get(self._namespace_of(obj))

    def replace(self, kind: str, items: list[dict]) -> set[int]:
        """After a (re)list: the kind's objects are exactly ``items``. Returns the deployments touched."""
        with self._lock:
            self._listed.add(kind)
            self.missing_apis.discard(kind)
            old = [obj for key, obj in self._objects.items() if key[0] == kind]
            touched = {self.deployment_of(obj) for obj in old}
            for obj in old:
                self._forget(obj)
            for obj in items:
                if self._wanted(obj):
                    self._store(obj)
                    touched.add(self.deployment_of(obj))
        return {d for d in touched if d is not None}

    def apply(self, event: WatchEvent) -> int | None:
        with self._lock:
            obj = event.object
            owner = self.deployment_of(obj)
            if event.type == "DELETED":
                self._forget(obj)
            elif self._wanted(obj):
                self._store(obj)
            return owner

    def _wanted(self, obj: dict) -> bool:
        """Events are kept for our namespaces only: a cluster's others are none of our business."""
        return obj["kind"] != "Event" or self.deployment_of(obj) is not None

    def _store(self, obj: dict) -> None:
        key = _key(obj)
        self._objects[key] = obj
        self._by_namespace.setdefault(self._namespace_of(obj), set()).add(key)
        if obj["kind"] == "Namespace":
            owner = (obj["metadata"].get("labels") or {}).get(L.DEPLOYMENT)
            if owner and owner.isdigit():
                self._namespace_owner[obj["metadata"]["name"]] = int(owner)
                self._namespace_of_deployment[int(owner)] = obj["metadata"]["name"]

    def _forget(self, obj: dict) -> None:
        key = _key(obj)
        self._objects.pop(key, None)
        namespace = self._namespace_of(obj)
        keys = self._by_namespace.get(namespace)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_namespace[namespace]
        if obj["kind"] == "Namespace":
            owner = self._namespace_owner.pop(namespace, None)
            if self._namespace_of_deployment.get(owner) == namespace:
                del self._namespace_of_deployment[owner]

    def observations(self, deployment_ids: Iterable[int]) -> dict[int, Observation]:
        """`observation` of each of ``deployment_ids`` whose namespace is in the cache (found from the
        namespace's label), taken now; the others are left out."""
        with self._lock:
            namespaces = {d: self._namespace_of_deployment.get(d) for d in deployment_ids}
        return {d: self.observation(d, namespace) for d, namespace in namespaces.items() if namespace}

    def observation(self, deployment_id: int, namespace: str) -> Observation:
        """What the cluster holds of one deployment: a lookup in its namespace, not a scan of everything."""
        with self._lock:
            mine = [
                self._objects[key]
                for key in self._by_namespace.get(namespace, ())
                if self.deployment_of(self._objects[key]) == deployment_id
            ]
        observation = Observation(watched=frozenset(self._listed), tls_managed="Certificate" not in self.missing_apis)
        for obj in mine:
            kind = obj["kind"]
            if kind == "Namespace":
                observation.namespace = obj
            elif kind == "Pod":
                observation.pods.append(obj)
            elif kind == "PersistentVolumeClaim":
                observation.claims.append(obj)
            elif kind in ("StatefulSet", "Deployment"):
                observation.workloads.append(obj)
            elif kind == "Ingress":
                observation.ingresses.append(obj)
            elif kind == "Certificate":
                observation.certificates.append(obj)
            elif kind == "Job":
                observation.jobs.append(obj)
            elif kind == "Service":
                observation.services.append(obj)
            elif kind == "EndpointSlice":
                observation.endpoint_slices.append(obj)
            elif kind == "Event":
                observation.events.append(obj)
        return observation

    def deployments(self) -> set[int]:
        with self._lock:
            return set(self._namespace_owner.values())


def _read_for_status(deployment_ids):
    """The deployments a recompute reads, with what computing their status needs of the database."""
    return (
        Deployment.objects.filter(pk__in=deployment_ids)
        .exclude(state=DeploymentState.DELETED)
        # The stored status and the app's own report come in the same query (joins).
        .select_related("project__team", "template_version", "status", "app_status")
        .defer("template_version__spec_data", "template_version__source")
        # Whether any operation is under way, in the same query: most deployments have none.
        .annotate(
            operations_under_way=Exists(Operation.objects.filter(deployment=OuterRef("pk"), status__in=ACTIVE_STATUSES))
        )
    )


_read_one_for_status = BakedQuery(lambda deployment_id: _read_for_status([deployment_id]))


def _read_active_operations(deployments: list[Deployment]) -> None:
    """Each deployment's operations under way as ``active_operations`` (they word its progress): one
    query for those of the batch that have any, none when no operation is under way."""
    for deployment in deployments:
        if not deployment.operations_under_way:
            deployment.active_operations = []
    prefetch_related_objects(
        [d for d in deployments if d.operations_under_way],
        Prefetch(
            "operations",
            queryset=Operation.objects.filter(status__in=ACTIVE_STATUSES).select_related("requested_by"),
            to_attr="active_operations",
        ),
    )


class ClusterWatcher:
    def __init__(
        self,
        cluster_factory: Callable[[], Cluster],
        *,
        coalesce: float = 0.05,
        recompute_every: float | None = None,
        resync_every: float | None = None,
        name: str | None = None,
    ):
        self.cluster_factory = cluster_factory
        self.coalesce = coalesce
        self.recompute_every = recompute_every or settings.STATUS_RECOMPUTE_SECONDS
        self.resync_every = resync_every or settings.SWEEP_SECONDS
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.cache = ObjectCache()
        self.stop_event = threading.Event()
        self._dirty: set[int] = set()
        self._dirty_since: dict[int, float] = {}  # when an event first made it dirty (for the lag metric)
        # Coalescing per deployment (`_take_due`): when its budget of recomputes is whole again
        # (recompute loop's thread only), and the deployments held until they may be recomputed
        # (guarded by _dirty_lock).
        self._budget_full_at: dict[int, float] = {}
        self._held: dict[int, float] = {}
        self._dirty_lock = threading.Lock()
        self._wake = threading.Event()
        self._failing: dict[str, tuple[float, str]] = {}  # kind -> (since, error)
        self._stale_marked = False
        self._cluster_back = threading.Event()  # set when the cluster answers again after an outage
        # Until when (monotonic, counted from before the last renewal) it holds the `statuses` lease.
        self._lease_until = float("-inf")
        self._corrected: dict[int, float] = {}  # deployment -> when its drift was last corrected
        self._threads: list[threading.Thread] = []

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> ClusterWatcher:
        for kind, selector in INFORMERS:
            self._spawn(f"watch-{kind}", self._inform, kind, selector)
        self._spawn("status-lease", self._status_lease_loop)
        self._spawn("status", self._recompute_loop)
        self._spawn("cpu", self._cpu_loop)
        self._spawn("app-status", self._app_status_loop)
        self._spawn("resync", self._resync_loop)
        logger.info("cluster watcher %s started", self.name)
        return self

    def _spawn(self, name: str, target, *args) -> None:
        thread = threading.Thread(target=self._guarded, args=(target, *args), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _guarded(self, target, *args) -> None:
        try:
            target(*args)
        finally:
            # This thread's connections: persistent ones (DB_CONN_MAX_AGE) would outlive it.
            connections.close_all()

    def stop(self, timeout: float = 10) -> None:
        self.stop_event.set()
        self._wake.set()
        self._cluster_back.set()  # wakes the resync loop
        self.cluster_factory().interrupt_watches(self.stop_event)
        for thread in self._threads:
            thread.join(timeout)
        self._give_back_leases()

    def is_quiet(self, deployment_id: int) -> bool:
        """Whether the deployment has no event waiting to be recomputed and its whole budget of
        recomputes: its next events are recomputed at once, as a quiet deployment's are."""
        now = time.monotonic()
        with self._dirty_lock:
            if deployment_id in self._dirty or deployment_id in self._held:
                return False
            full_at = self._budget_full_at.get(deployment_id)
        return full_at is None or full_at <= now

    def run_forever(self) -> None:
        self.start()
        try:
            while not self.stop_event.wait(1):
                pass
        finally:
            self.stop()

    # --- informers -----------------------------------------------------------------------
    def _inform(self, kind: str, selector: str | None) -> None:
        cluster = self.cluster_factory()
        fields = FIELD_SELECTORS.get(kind)
        resource_version: str | None = None
        failures = 0
        while not self.stop_event.is_set():
            try:
                if resource_version is None:
                    items, resource_version = cluster.list(kind, label_selector=selector, field_selector=fields)
                    self._mark_dirty(self.cache.replace(kind, items))
                    self._succeeded(kind)
                for event in cluster.watch(
                    kind,
                    resource_version=resource_version,
                    label_selector=selector,
                    field_selector=fields,
                    timeout_seconds=WATCH_TIMEOUT_SECONDS,
                    stop=self.stop_event,
                    on_connected=lambda: self._succeeded(kind),
                ):
                    resource_version = event.object["metadata"].get("resourceVersion", resource_version)
                    if event.type == "BOOKMARK":
                        continue
                    owner = self.cache.apply(event)
                    trace("watch", owner)
                    self._mark_dirty({owner})
                failures = 0
            except errors.WatchExpired:
                logger.info("watch of %s expired: listing again", kind)
                resource_version = None
            except errors.NotFound:
                # The cluster does not serve this kind (e.g. no cert-manager): nothing to watch.
                logger.info("the cluster has no %s API; checking again in %ss", kind, MISSING_API_RETRY_SECONDS)
                if kind not in self.cache.missing_apis:
                    self.cache.missing_apis.add(kind)
                    self._mark_dirty(self.cache.deployments())
                self._succeeded(kind)
                self.stop_event.wait(MISSING_API_RETRY_SECONDS)
            except errors.ClusterError as error:
                failures += 1
                self._failed(kind, str(error))
                # At most 5 s apart: how soon statuses and waiting work notice the cluster is back.
                self.stop_event.wait(max(min(0.5 * 2**failures, INFORMER_MAX_BACKOFF_SECONDS), error.retry_after or 0))
            except Exception:
                failures += 1
                logger.exception("watch of %s failed", kind)
                self._failed(kind, "the watcher hit an unexpected error (see its log)")
                self.stop_event.wait(min(0.5 * 2**failures, INFORMER_MAX_BACKOFF_SECONDS))

    def _succeeded(self, kind: str) -> None:
        if self._failing.pop(kind, None) and not self._failing and self._stale_marked:
            logger.info("the cluster is reachable again")
            self._stale_marked = False
            self._cluster_back.set()
            self._mark_dirty(self._all_live())

    def _failed(self, kind: str, error: str) -> None:
        if kind not in self._failing:
            logger.warning("watch of %s failing: %s", kind, error)
        since = self._failing.get(kind, (time.time(), error))[0]
        self._failing[kind] = (since, error)
        self._wake.set()

    def _mark_dirty(self, deployment_ids) -> None:
        ids = {d for d in deployment_ids if d is not None}
        if ids:
            now = time.monotonic()
            with self._dirty_lock:
                self._dirty |= ids
                for deployment_id in ids:
                    self._dirty_since.setdefault(deployment_id, now)
            self._wake.set()

    # --- statuses --------------------------------------------------------------------------
    def _recompute_loop(self) -> None:
        """Recompute dirty deployments, and now and then all of them, without making events wait.

        Coalescing is per deployment and on the leading edge (`_take_due`): the first
        event of a deployment that was quiet is recomputed at once, whatever the others
        do, and so is what arrived during that recompute; the rest of a burst waits, at
        most one recompute per deployment per window. The periodic pass over everything
        goes in slices, after the events of the moment.
        """
        last_full = time.monotonic()
        pending: list[int] = []
        checks = ConnectionChecks()  # not before each batch: an event's recompute is a few queries
        while not self.stop_event.is_set():
            now = time.monotonic()
            if pending:
                idle = 0.0
            else:
                idle = max(0.0, self.recompute_every - (now - last_full))
                with self._dirty_lock:
                    if self._held:  # the earliest end of a burst's window
                        idle = min(idle, max(0.0, min(self._held.values()) - now))
            self._wake.wait(idle)
            if self.stop_event.is_set():
                return
            self._wake.clear()
            if not pending and time.monotonic() - last_full >= self.recompute_every:
                last_full = time.monotonic()
                pending = sorted(self.cache.deployments())
            batch: set[int] = set()
            sliced: set[int] = set()
            failed = False
            try:
                if not self._writes_statuses():
                    with self._dirty_lock:
                        self._dirty.clear()
                        self._dirty_since.clear()
                        self._held.clear()
                    pending = []
                    continue
                self._check_stale()
                if self._failing and self._stale_marked:
                    pending = []
                    with self._dirty_lock:  # no window to wait for while nothing is recomputed
                        self._dirty |= set(self._held)
                        self._held.clear()
                    continue
                batch = self._recompute_due()
                sliced = set(pending[:FULL_PASS_SLICE]) - batch
                pending = pending[FULL_PASS_SLICE:]
                # The events first, and those arriving meanwhile between two of the slice's
                # deployments: a change waits for no slice of the periodic pass.
                self._recompute(sliced, between=self._recompute_due)
            except Exception:
                logger.exception("recomputing statuses failed")
                # Each status is written in a transaction of its own, so none is half-written: the
                # batch is simply recomputed again (on a new connection, should the database have dropped it).
                self._mark_dirty(batch | sliced)
                failed = True
                self.stop_event.wait(1)
            finally:
                checks.check(at_once=failed)

    def _recompute_due(self) -> set[int]:
        """Recompute the dirty deployments that are due now (`_take_due`); returns them."""
        batch, marked = self._take_due()
        for deployment_id in marked:
            trace("recompute", deployment_id)
        try:
            self._recompute(batch)
        except Exception:
            self._mark_dirty(batch)  # tried again once the loop recovers
            raise
        done = time.monotonic()
        for deployment_id in batch:
            self._budget_full_at[deployment_id] = (
                max(self._budget_full_at.get(deployment_id, done), done) + self.coalesce
            )
        for since in marked.values():
            WATCHER_EVENT_LAG_SECONDS.observe(done - since)
        return batch

    def _take_due(self) -> tuple[set[int], dict[int, float]]:
        """The dirty deployments to recompute now, and when each was first marked dirty.

        Each deployment has a budget of COALESCE_BURST recomputes that refills at one per
        `coalesce` (a token bucket): a quiet deployment's change and the cluster's reaction to
        it (a pod turns ready; milliseconds later its Deployment counts it and its EndpointSlice
        routes to it: what the status needs to say "ready") are both recomputed at once; the
        rest of a burst is held until the budget allows one more (its events meanwhile are one
        recompute). A storm costs at most one recompute per deployment per window.
        """
        now = time.monotonic()
        slack = (COALESCE_BURST - 1) * self.coalesce
        with self._dirty_lock:
            for deployment_id in self._dirty:
                full_at = self._budget_full_at.get(deployment_id)
                if full_at is not None and full_at - now > slack:
                    self._held.setdefault(deployment_id, full_at - slack)
                else:
                    self._held[deployment_id] = now
            self._dirty = set()
            batch = {d for d, due in self._held.items() if due <= now}
            for deployment_id in batch:
                del self._held[deployment_id]
            marked = {d: self._dirty_since.pop(d) for d in batch if d in self._dirty_since}
        # A whole budget is what a deployment never recomputed has: forget it (the map stays as small as a burst).
        for deployment_id in [d for d, full_at in self._budget_full_at.items() if full_at <= now]:
            del self._budget_full_at[deployment_id]
        return batch, marked

    def _writes_statuses(self) -> bool:
        """Whether this watcher writes statuses now: it holds the `statuses` lease, which its own
        thread renews (`_status_lease_loop`), so an event's recompute never waits for that round trip.

        One writer at a time, because two watchers see each event a few milliseconds apart: the one
        behind would write the status it still believes, an older one, over the newer one just
        written, and the newer one would come back a moment later (flapping). The others keep their
        informers and caches warm and take over within STATUS_LEASE_SECONDS of the writer's death,
        comparing everything with what the database holds.
        """
        return time.monotonic() < self._lease_until

    def _status_lease_loop(self) -> None:
        """Take or renew the `statuses` lease every STATUS_LEASE_RENEW_SECONDS. A renewal that fails
        (the database away) leaves the lease held until it expires, as the database sees it."""
        while not self.stop_event.is_set():
            asked = time.monotonic()
            try:
                held = Lease.acquire("statuses", self.name, STATUS_LEASE_SECONDS)
            except Exception:
                logger.warning("watcher %s could not renew its statuses lease", self.name, exc_info=True)
            else:
                became_writer = held and not self._writes_statuses()
                self._lease_until = asked + STATUS_LEASE_SECONDS if held else float("-inf")
                if became_writer:
                    logger.info("watcher %s writes the statuses now", self.name)
                    self._mark_dirty(self.cache.deployments())  # compared with what the database holds
            finally:
                close_old_connections()
            self.stop_event.wait(max(0.0, STATUS_LEASE_RENEW_SECONDS - (time.monotonic() - asked)))

    def _give_back_leases(self) -> None:
        """On a clean stop (its threads joined): another watcher (or this one restarted) takes over
        each job at once instead of waiting for the lease to expire."""
        self._lease_until = float("-inf")
        try:
            for name in LEASES:
                Lease.release(name, self.name)
        except Exception:  # noqa: BLE001 - the database may be away: the leases then simply expire
            logger.warning("could not give back the leases of watcher %s", self.name, exc_info=True)

    def _recompute(self, deployment_ids: set[int], *, between: Callable[[], set[int]] | None = None) -> None:
        """Compute each status in memory; write only those that changed (`statuses.status_store`).

        One query reads the batch's deployments with their stored statuses; each
        tree is computed once, from the stored one (which carries its "since"
        stamps), and compared with it: the unchanged statuses cost one bulk UPDATE
        of ``observed_at`` for the batch (only those stamped OBSERVED_STAMP_EVERY
        ago or more), a changed one a compare-and-set, or a write under its row
        lock (computed again there if another writer changed it since). ``between``: called
        before each deployment while events are waiting (the periodic pass lets
        them go first); it returns the deployments it recomputed, from a newer
        snapshot than this batch's, which this batch then leaves alone.
        """
        if not deployment_ids:
            return
        now = timezone.now()
        grace = timedelta(seconds=settings.STATUS_GRACE_SECONDS)
        cluster = cluster_settings()
        # Observe first, read the desired state second: our operations commit the desired state
        # before they touch the cluster, so what the cluster shows here is never newer than the rows
        # read next. Read the other way round, a delete, a disable or a restart that committed in
        # between was seen in the cluster but not in the rows: drift, "scaled to 0 by hand", a
        # rollout nobody asked for.
        observed = self.cache.observations(deployment_ids)
        if len(deployment_ids) == 1:  # an event's, mostly: compiled once
            deployments = _read_one_for_status(*deployment_ids)
        else:
            deployments = list(_read_for_status(deployment_ids))
        unchanged = []
        drifting: list[tuple[int, list[str]]] = []
        app_grace = timedelta(seconds=settings.APP_STATUS_GRACE_SECONDS)
        _read_active_operations(deployments)
        builds = statuses.builds_nodes(deployments)  # one query for the batch
        fresher: set[int] = set()  # recomputed by `between` from a newer snapshot than this batch's
        for deployment in deployments:
            if between is not None and self._dirty:
                fresher |= between()
            if deployment.pk in fresher:
                continue
            observation = observed.get(deployment.pk) or self.cache.observation(deployment.pk, deployment.namespace)
            report = getattr(deployment, "app_status", None)
            observation.app_status = report.as_observed() if report is not None else None
            expectation = deployment.expectation(cluster, deployment.active_operations)
            stored = getattr(deployment, "status", None)
            previous = (stored.tree or None) if stored is not None else None
            tree = compute_status(
                expectation,
                observation,
                now=now,
                grace=grace,
                previous=previous,
                app_grace=app_grace,
                builds=builds[deployment.pk],
            )
            if tree.get("drift"):
                drifting.append((deployment.pk, tree["drift"]))
            if stored is not None and stored.observed_at is not None and not statuses.tree_changed(previous, tree):
                if now - stored.observed_at >= OBSERVED_STAMP_EVERY:
                    unchanged.append(deployment.pk)
                continue
            # The row and the tree go along: the store locks the status row and writes the tree,
            # unless another writer changed the row since it was read here.
            statuses.status_store(deployment.pk, observation, now=now, deployment=deployment, computed=(previous, tree))
        for deployment_id, drift in drifting:
            self._correct_drift(deployment_id, drift)
        if unchanged:
            self._refresh_observed(unchanged, now)

    def _correct_drift(self, deployment_id: int, drift: list[str]) -> None:
        """Level-triggered, like a controller: what we own was lost or changed, so apply it again."""
        last = self._corrected.get(deployment_id)
        if last is not None and time.monotonic() - last < DRIFT_CORRECT_SECONDS:
            return
        self._corrected[deployment_id] = time.monotonic()
        drift_correct(deployment_id=deployment_id, drift=drift)

    @staticmethod
    def _refresh_observed(deployment_ids: list[int], now) -> None:
        """Stamp unchanged statuses as seen now, never waiting for a row another
        transaction holds (a writer of that status, the CPU sampler, another
        watcher): waiting on several rows at once is how deadlocks start. A row
        skipped now is stamped by its writer or by the next pass."""
        with transaction.atomic():
            free = list(
                DeploymentStatus.objects.filter(deployment_id__in=deployment_ids)
                .select_for_update(skip_locked=True)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            DeploymentStatus.objects.filter(pk__in=free).update(observed_at=now)

    def _check_stale(self) -> None:
        if not self._failing or self._stale_marked:
            return
        since, error = min(self._failing.values())
        if time.time() - since >= settings.STATUS_STALE_SECONDS:
            moment = timezone.now() - timedelta(seconds=time.time() - since)
            statuses.status_mark_stale(since=moment, error=error)
            self._stale_marked = True

    def _all_live(self) -> set[int]:
        return set(Deployment.objects.live().values_list("pk", flat=True))

    # --- CPU and memory -----------------------------------------------------------------------
    def _cpu_loop(self) -> None:
        cluster = self.cluster_factory()
        interval = settings.CPU_SAMPLE_SECONDS
        while not self.stop_event.wait(interval):
            try:
                if not Lease.acquire("cpu-sampler", self.name, interval * 3):
                    continue
                metrics = cluster.pod_metrics(label_selector=L.OWNED_SELECTOR)
                if metrics is not None:
                    cpu.cpu_record(cpu.usage_by_deployment(metrics), memory=cpu.memory_by_deployment(metrics))
            except errors.ClusterError as error:
                logger.info("CPU sample skipped: %s", error)
            except Exception:
                logger.exception("CPU sampling failed")
            finally:
                close_old_connections()

    # --- the apps' own status -----------------------------------------------------------------
    def _app_status_loop(self) -> None:
        """Ask every app for its status every APP_STATUS_SECONDS, one watcher at a time (a lease);
        the deployments whose answer changed are recomputed (and published) at once."""
        cluster = self.cluster_factory()
        while not self.stop_event.is_set():
            interval = settings.APP_STATUS_SECONDS
            started = time.monotonic()
            try:
                # Not while the cluster cannot be seen: every status says so already.
                if not self._stale_marked and Lease.acquire("app-status", self.name, app_status.lease_seconds()):
                    self._mark_dirty(app_status.poll_round(cluster))
            except Exception:
                logger.exception("asking the apps for their status failed")
            finally:
                close_old_connections()
            self.stop_event.wait(max(0.0, interval - (time.monotonic() - started)))

    # --- resync --------------------------------------------------------------------------------
    def _resync_loop(self) -> None:
        """Send again the tasks of pending work that were lost (`sweeper`), one watcher at a time."""
        from deployments.sweeper import Sweeper

        sweeper = Sweeper()
        while not self.stop_event.is_set():
            self._cluster_back.wait(self.resync_every)  # at once when the cluster is back
            if self.stop_event.is_set():
                return
            try:
                back = self._cluster_back.is_set()
                self._cluster_back.clear()
                if Lease.acquire("resync", self.name, self.resync_every * 3):
                    if back:
                        # Tasks wait in a backoff of up to a minute after a long outage: not that long.
                        sweeper.send_waiting()
                    sweeper.sweep()
                    progress.operations_sweep()
            except Exception:
                logger.exception("resync failed")
            finally:
                close_old_connections()
