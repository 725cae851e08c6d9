"""The deployment lease: one task at a time acts on a deployment's cluster objects.

A task takes the lease with a compare-and-set `UPDATE` on the deployment's
row and gives it back when done. While it works, one thread of its process
(the `LeaseKeeper`) renews every lease the process holds, in one `UPDATE`
every third of DEPLOYMENT_LEASE_SECONDS. A worker that dies (SIGKILL, a lost
machine) stops renewing: its leases expire within DEPLOYMENT_LEASE_SECONDS,
and the sweeper hands the work to another worker. Each task execution has an
owner of its own, so a message delivered twice never runs twice at once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.db.models import Q
from django.utils import timezone

from deployments.models import Deployment

logger = logging.getLogger(__name__)


class LeaseBusy(Exception):
    """Another worker is acting on this deployment right now; try again shortly."""


class LeaseLost(LeaseBusy):
    """The lease ran out while the task worked (its process stalled) and another task took it over."""


def execution_owner(task_id: str | None) -> str:
    """An owner name for one execution of a task: its id plus a random part (a redelivered
    message keeps the id, and must not share the lease with a copy still running)."""
    return f"{task_id or 'eager'}:{uuid.uuid4().hex[:12]}"


@contextmanager
def deployment_lease(deployment_id: int, owner: str):
    """Hold the deployment's lease for the block (renewed meanwhile), or raise `LeaseBusy`.

    Compare-and-set on the row: free, expired, or already ``owner``'s.
    """
    now = timezone.now()
    claimed = (
        Deployment.objects.filter(pk=deployment_id)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner))
        .update(lease_owner=owner, lease_until=now + timedelta(seconds=settings.DEPLOYMENT_LEASE_SECONDS))
    )
    if not claimed:
        raise LeaseBusy(f"deployment {deployment_id} is being worked on")
    keeper.hold(deployment_id, owner)
    try:
        yield
    finally:
        keeper.release(owner)
        _give_back(deployment_id, owner)


def _give_back(deployment_id: int, owner: str) -> None:
    """Free the lease. When the connection died meanwhile (PostgreSQL restarted, or killed it), on a
    fresh one: a lease left held would keep the task's retry waiting for DEPLOYMENT_LEASE_SECONDS."""
    mine = Deployment.objects.filter(pk=deployment_id, lease_owner=owner)
    try:
        mine.update(lease_owner="", lease_until=None)
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise  # the connection belongs to an enclosing transaction: not ours to replace
        connection.close()
        try:
            mine.update(lease_owner="", lease_until=None)
        except DatabaseError:
            # The database is away: the lease expires by itself, and the task's own error goes on up.
            logger.warning("could not give back the lease of deployment %s", deployment_id, exc_info=True)


def still_holds(deployment_id: int, owner: str) -> bool:
    """Whether ``owner`` still holds the lease: check it inside the transaction that records the
    work as done, with the row locked, so a task that lost its lease never records anything."""
    return Deployment.objects.select_for_update().filter(pk=deployment_id, lease_owner=owner).exists()


class LeaseKeeper:
    """Renews the deployment leases this process's tasks hold, from one thread of its own (while any is held)."""

    def __init__(self):
        self._held: dict[str, int] = {}  # owner -> deployment id
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, deployment_id: int, owner: str) -> None:
        with self._lock:
            self._held[owner] = deployment_id
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._renew_while_held, name="lease-keeper", daemon=True)
                self._thread.start()

    def release(self, owner: str) -> None:
        with self._lock:
            self._held.pop(owner, None)

    def _renew_while_held(self) -> None:
        """Renew every third of a lease's length; end (closing its connection) once nothing is held."""
        try:
            renewed = time.monotonic()
            while True:
                # Short naps: a lease length changed meanwhile (tests do that) takes effect at once.
                time.sleep(0.25)
                if time.monotonic() - renewed < settings.DEPLOYMENT_LEASE_SECONDS / 3:
                    continue
                renewed = time.monotonic()
                with self._lock:
                    if not self._held:
                        self._thread = None
                        return
                try:
                    self.renew()
                except Exception:
                    # The database may be restarting: drop the connection, try again next time.
                    logger.warning("could not renew deployment leases", exc_info=True)
                    connection.close()
        finally:
            connection.close()

    def renew(self) -> int:
        """Push every held lease's expiry forward; returns how many were renewed."""
        with self._lock:
            held = list(self._held.items())
        if not held:
            return 0
        mine = reduce(or_, (Q(pk=deployment_id, lease_owner=owner) for owner, deployment_id in held))
        until = timezone.now() + timedelta(seconds=settings.DEPLOYMENT_LEASE_SECONDS)
        renewed = Deployment.objects.filter(mine).update(lease_until=until)
        if renewed < len(held):
            logger.warning("%s of %s deployment leases were taken over before renewal", len(held) - renewed, len(held))
        return renewed


keeper = LeaseKeeper()
