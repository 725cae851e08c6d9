"""Websocket consumers: each checks access in connect(), joins its group, and
sends the same server-rendered fragments the page uses, swapped out-of-band by
htmx. Only ids travel over the channel layer; the consumer re-reads the rows.
On every (re)connect the current state is sent, so a page is never stale.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError, connection
from django.http import Http404
from django.template.loader import render_to_string

from deployments import events, selectors
from deployments.access import deployment_for, live_deployment, membership_for, project_for
from deployments.models import Deployment, DeploymentState, Membership, Role
from diploi_site.baked import BakedQuery
from diploi_site.database import ConnectionChecks
from diploi_site.metrics import FRAGMENT_RENDERS, FRAGMENT_SENDS, WEBSOCKETS
from diploi_site.tracing import trace

logger = logging.getLogger(__name__)

CLOSE_TOO_MANY = 4429


class OpenSockets:
    """Live sockets per user in this web process, capped at WEBSOCKETS_PER_USER: one user's many
    tabs (or a script) cannot make every change render hundreds of times here."""

    def __init__(self):
        self._lock = threading.Lock()
        self._count: dict[int, int] = {}

    def take(self, user_id: int) -> bool:
        with self._lock:
            if self._count.get(user_id, 0) >= settings.WEBSOCKETS_PER_USER:
                return False
            self._count[user_id] = self._count.get(user_id, 0) + 1
            return True

    def give_back(self, user_id: int) -> None:
        with self._lock:
            left = self._count.get(user_id, 0) - 1
            if left > 0:
                self._count[user_id] = left
            else:
                self._count.pop(user_id, None)


open_sockets = OpenSockets()


def too_many_reason() -> str:
    return f"Too many live pages: at most {settings.WEBSOCKETS_PER_USER} per user. Close other tabs and reload."


async def take_socket(consumer: AsyncWebsocketConsumer) -> bool:
    """Count the consumer's socket against its user's cap (`counted_user` set), or refuse it with
    4429 and say why (False). The consumer gives it back with `open_sockets.give_back`."""
    user_id = consumer.scope["user"].pk
    if not open_sockets.take(user_id):
        await consumer.accept()
        await consumer.close(code=CLOSE_TOO_MANY, reason=too_many_reason())
        return False
    consumer.counted_user = user_id
    return True


_connection_checks = ConnectionChecks()


def on_django_thread(function):
    """`sync_to_async(function)` for what reads the database for a live page, on Django's thread.

    The thread's connection is kept sound as Django does when a request starts (`dispatch` does not
    do it per message here), at most every CONNECTION_CHECK_SECONDS (`diploi_site.database`): the
    check was an eighth of a live header's time. A connection that died since the last check fails
    the call's first query: it is replaced and the call, which only reads, made once more.
    """

    def run(*args, **kwargs):
        _connection_checks.check()
        try:
            return function(*args, **kwargs)
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block:
                raise
            _connection_checks.check(at_once=True)
            return function(*args, **kwargs)

    return sync_to_async(run)


class SharedRenders:
    """One render of a change for every socket of this process that shows the same thing.

    A deployment page's fragments depend on the deployment, the tab and the viewer's role (its
    buttons), nothing else: no user name, no CSRF token, no request. So the sockets that got the
    same change message (its ``change`` id) for the same tab join one batch: in a single call on
    Django's thread, started once the change was committed, the batch reads the memberships of
    all its users in one query (access is checked again for every change, per user: a member
    removed from the team gets None and the socket closes), renders once per role present, and
    gives each user the render of their own role: a viewer never gets a developer's fragment.

    A socket that handles the message after the batch started (messages reach sockets spread
    out under load) reads its own membership, one query, and takes the batch's render of its
    role, which read the rows after the change committed; only a role the batch did not render
    starts a new batch. A batch is kept KEEP_SECONDS after it ended, for such late sockets.

    The header (the health) is rendered and handed out first, from the few queries it needs;
    the tab's other fragments follow in a second call, from the same rows: the new health
    reaches the page without waiting for the charts and the tree.
    """

    KEEP_SECONDS = 2.0

    def __init__(self):
        self._batches: dict[tuple, _Batch] = {}

    async def render(self, deployment_id: int, tab: str, change: str, user_id: int) -> tuple[float, Parts]:
        """(when the render started, ``user_id``'s `Parts`: their header now, the rest to await)."""
        key = (deployment_id, tab, change)
        batch = self._batches.get(key)
        if batch is not None and batch.started is not None:
            await asyncio.shield(batch.headed)
            if user_id in batch.headers or await on_django_thread(batch.adopt)(user_id):
                return batch.started, Parts(batch, user_id)
            batch = None
        if batch is None:
            batch = self._batches[key] = _Batch(deployment_id, tab)
            loop = asyncio.get_running_loop()
            batch.headed = loop.create_future()
            batch.task = loop.create_task(batch.run())
            batch.task.add_done_callback(lambda _: loop.call_later(self.KEEP_SECONDS, self._forget, key, batch))
        batch.users.add(user_id)
        # Shielded: a socket that closes while it waits must not cancel the others' render.
        await asyncio.shield(batch.headed)
        if user_id not in batch.headers:  # joined while the batch was starting: on its own, at once
            return await self.render(deployment_id, tab, change, user_id)
        return batch.started, Parts(batch, user_id)

    def _forget(self, key: tuple, batch) -> None:
        if self._batches.get(key) is batch:
            del self._batches[key]


class Parts:
    """One user's share of a batch: ``header`` (None: they may not see it; then there is no rest),
    and `fragments()`, the tab's other fragments as (template name, html) pairs."""

    def __init__(self, batch: _Batch, user_id: int):
        self._batch, self._role = batch, batch.roles.get(user_id)
        self.header = batch.headers[user_id]

    async def fragments(self) -> list[tuple[str, str]]:
        await asyncio.shield(self._batch.task)
        return self._batch.rests.get(self._role, [])


# A user's role in a team, for a page watched by one person (most are) and a late socket: compiled once.
_role_of_user = BakedQuery(
    lambda team_id, user_id: Membership.objects.filter(team_id=team_id, user_id=user_id).values_list("user_id", "role"),
    arity=2,
)


class _Batch:
    def __init__(self, deployment_id: int, tab: str):
        self.deployment_id, self.tab = deployment_id, tab
        self.users: set[int] = set()
        self.started: float | None = None
        self.headers: dict[int, str | None] = {}
        self.roles: dict[int, str] = {}  # the users who got a header, and their role
        self.rests: dict[str, list[tuple[str, str]]] = {}  # per role: (template name, html)
        self._team_id: int | None = None
        self._rendered: dict[str, str] = {}  # per role: the header
        self._contexts: dict[str, dict] = {}  # per role: the header's context, which the rest goes on from
        self.headed: asyncio.Future
        self.task: asyncio.Task

    async def run(self) -> None:
        try:
            await on_django_thread(self.run_header)()
        except Exception as error:  # every waiting socket gets it (and closes with 1011)
            self.headed.set_exception(error)
            return
        self.headed.set_result(None)
        if self._contexts:
            await on_django_thread(self.run_rest)()

    def run_header(self) -> None:
        """On Django's thread: every user's header, one render per role."""
        self.started = time.monotonic()  # from now on, sockets come late (`adopt`)
        users = frozenset(self.users)
        deployment = live_deployment(self.deployment_id)
        if deployment is None:
            gone = Deployment.objects.filter(pk=self.deployment_id, state=DeploymentState.DELETED).exists()
            self.headers = dict.fromkeys(users, deleted_notice(self.deployment_id) if gone else None)
            return
        self._team_id = deployment.project.team_id
        if len(users) == 1:
            roles = dict(_role_of_user(self._team_id, *users))
        else:
            members = Membership.objects.filter(team_id=self._team_id, user_id__in=users)
            roles = dict(members.values_list("user_id", "role"))
        for role in set(roles.values()):
            self._contexts[role] = context = header_context_for(deployment, role)
            self._rendered[role] = render_to_string(TAB_FRAGMENTS[self.tab][0], context)
        FRAGMENT_RENDERS.labels(DeploymentConsumer.page_kind).inc(len(self._rendered))
        self.roles = roles
        self.headers = {user: self._rendered[roles[user]] if user in roles else None for user in users}

    def adopt(self, user_id: int) -> bool:
        """On Django's thread, for a socket that came after the batch started: give it this
        batch's render of its role (its membership read now), or say False (no such render)."""
        if self._team_id is None:
            return False
        role = dict(_role_of_user(self._team_id, user_id)).get(user_id)
        if role not in self._rendered:
            return False
        self.roles[user_id], self.headers[user_id] = role, self._rendered[role]
        return True

    def run_rest(self) -> None:
        """On Django's thread: the tab's other fragments, once per role that got a header."""
        for role, header in self._contexts.items():
            self.rests[role] = render_fragments(header["deployment"], self.tab, role, header=header, skip_header=True)


shared_renders = SharedRenders()


# The fragments each deployment tab shows live (the Options tab's forms are
# never replaced under someone typing: only its header is live).
TAB_FRAGMENTS = {
    "overview": (
        "deployments/_deployment_header.html",
        "deployments/deployment_overview.html#endpoints",
        "deployments/deployment_overview.html#cpu-chart",
        "deployments/deployment_overview.html#ssh-sessions",
        "deployments/deployment_overview.html#memory-chart",
        "deployments/deployment_overview.html#actions",
        "deployments/_status_tree.html",
    ),
    "status": (
        "deployments/_deployment_header.html",
        "deployments/_status_tree.html",
        "deployments/_health_timeline.html",
        "deployments/deployment_status.html#operations",
    ),
    "options": ("deployments/_deployment_header.html",),
    "logs": ("deployments/_deployment_header.html",),
    "action": ("deployments/_deployment_header.html",),  # a run's page (its own socket sends the run)
    "activity": ("deployments/_deployment_header.html", "deployments/deployment_activity.html#activity-log"),
}


class FragmentConsumer(AsyncWebsocketConsumer):
    """Joins one group after an access check; re-renders on every message to it."""

    group: str | None = None
    page_kind = ""  # the metric's label
    counted_user: int | None = None
    # When the render whose fragments this socket sent last started: never send an older one after it.
    sent_from = float("-inf")

    async def connect(self):
        allowed = await on_django_thread(self.authorize)()
        if not allowed:
            await self.close(code=4404)
            return
        if not await take_socket(self):
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self._counted = WEBSOCKETS.labels(self.page_kind)
        self._counted.inc()
        await self.push()

    async def dispatch(self, message):
        """As channels dispatches, without its hop to Django's thread before every message to close
        old connections there: one change reaches many sockets of a process at once, and each hop
        queued behind the others' on that one thread before the socket could even join its render.
        What reads the database here goes through `on_django_thread`, which does it on the way."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code):
        if counted := getattr(self, "_counted", None):
            counted.dec()
            self._counted = None
        if self.counted_user is not None:
            open_sockets.give_back(self.counted_user)
            self.counted_user = None
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def push(self, render=None, *, traced: int | None = None):
        """Send what `render` (by default `self.render`) returns: None closes the socket
        (access lost), an empty string sends nothing. ``traced``: the deployment whose
        change this is, for the benchmarks' stage timestamps (`diploi_site.tracing`)."""
        started = time.monotonic()
        FRAGMENT_RENDERS.labels(self.page_kind).inc()
        html = await on_django_thread(render or self.render)()
        await self.send_rendered(started, html, traced=traced)

    async def send_rendered(self, started: float, html: str | None, *, traced: int | None = None):
        """Send a render that started at ``started`` (as `push` does), unless this socket already sent
        one that started later: that one read the database after this one, so it is at least as new,
        and an older status must never overwrite a newer one on the page."""
        trace("rendered", traced)
        if html is None:
            await self.close(code=4410)
        elif html and started >= self.sent_from:
            self.sent_from = started
            await self.send(text_data=html)
            FRAGMENT_SENDS.labels(self.page_kind).inc()
            trace("sent", traced)

    def authorize(self) -> bool:
        raise NotImplementedError

    def render(self) -> str | None:
        raise NotImplementedError


class TeamConsumer(FragmentConsumer):
    """The projects list of one team (one page of it).

    As on a project page, a change inside one project (a deployment's health)
    re-renders only that project's card, unless the page's shape changed (a
    project added, removed or renamed): then the whole list.
    """

    page_kind = "team"

    def authorize(self) -> bool:
        team_id = self.scope["url_route"]["kwargs"]["team_id"]
        self.page = parse_qs(self.scope.get("query_string", b"").decode()).get("page", ["1"])[0]
        self.membership = membership_for(self.scope["user"], team_id)
        self.group = events.team_group(team_id)
        self.outline = None
        return self.membership is not None

    async def team_changed(self, message):
        project_id = message.get("project_id")
        await self.push(lambda: self.render_change(project_id))

    def _membership(self):
        # Access is checked again on every push: a member removed from the team stops receiving.
        return membership_for(self.scope["user"], self.membership.team_id)

    def render(self) -> str | None:
        membership = self._membership()
        if membership is None:
            return None
        page = selectors.team_projects_page(membership.team, self.page)
        self.outline = selectors.team_outline_of(page)
        context = {
            "page": page,
            "projects": page.object_list,
            "can_create": membership.allows(Role.DEVELOPER),
            "oob": True,
        }
        return render_to_string("deployments/project_list.html#project-list", context)

    def render_change(self, project_id: int | None) -> str | None:
        membership = self._membership()
        if membership is None:
            return None
        if project_id is None or selectors.team_page_outline(membership.team, self.page) != self.outline:
            return self.render()
        if project_id not in {pk for pk, _ in self.outline[2]}:
            return ""  # a project on another page
        project = selectors.team_project_row(membership.team, project_id)
        if project is None:
            return self.render()
        context = {"project": project, "oob_row": True}
        return render_to_string("deployments/project_list.html#project-card", context).strip()


class ProjectConsumer(FragmentConsumer):
    """A project page's list of deployments.

    A change to one deployment re-renders only its row, unless the page's shape
    (which deployments it lists, their names and order, the count) changed:
    then the whole list. A busy project costs one row per change, not a page.
    """

    page_kind = "project"

    def authorize(self) -> bool:
        self.project_id = self.scope["url_route"]["kwargs"]["project_id"]
        self.page = parse_qs(self.scope.get("query_string", b"").decode()).get("page", ["1"])[0]
        self.group = events.project_group(self.project_id)
        self.outline = None
        try:
            project_for(self.scope["user"], self.project_id)
        except (Http404, PermissionDenied):
            return False
        return True

    async def project_changed(self, message):
        deployment_id = message.get("deployment_id")
        await self.push(lambda: self.render_change(deployment_id))

    def _project(self):
        # Access is checked again on every push: a member removed from the team stops receiving.
        try:
            return project_for(self.scope["user"], self.project_id)
        except (Http404, PermissionDenied):
            return None, None

    def render(self) -> str | None:
        project, membership = self._project()
        if project is None:
            return None
        page = selectors.project_deployments_page(project, self.page)
        self.outline = selectors.outline_of(page)
        context = {
            "project": project,
            "page": page,
            "deployments": page.object_list,
            "can": selectors.Permissions.of(membership),
            "oob": True,
        }
        return render_to_string("deployments/project_detail.html#deployment-list", context)

    def render_change(self, deployment_id: int | None) -> str | None:
        project, membership = self._project()
        if project is None:
            return None
        if deployment_id is None or selectors.project_page_outline(project, self.page) != self.outline:
            return self.render()
        if deployment_id not in {pk for pk, _ in self.outline[2]}:
            return ""  # a deployment on another page
        deployment = selectors.project_deployment_row(project, deployment_id)
        if deployment is None:  # gone since the outline was read
            return self.render()
        context = {"project": project, "deployment": deployment, "oob_row": True}
        return render_to_string("deployments/project_detail.html#deployment-row", context).strip()


class DeploymentConsumer(FragmentConsumer):
    """One deployment page: its header, status tree and the tab's live parts."""

    page_kind = "deployment"

    def authorize(self) -> bool:
        self.deployment_id = self.scope["url_route"]["kwargs"]["deployment_id"]
        query = parse_qs(self.scope.get("query_string", b"").decode())
        tab = query.get("tab", ["overview"])[0]
        self.tab = tab if tab in TAB_FRAGMENTS else "overview"
        self.group = events.deployment_group(self.deployment_id)
        try:
            deployment_for(self.scope["user"], self.deployment_id)
        except (Http404, PermissionDenied):
            return False
        return True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Template name -> the hash of the html this socket sent of it last (not the html: a socket
        # holds no copy of its page; 64-bit SipHash, so a collision is not a practical concern).
        self._shown: dict[str, int] = {}

    # The change id of the newest message, and whether it is still to be shown (`_catch_up`).
    _latest: str | None = None
    _behind = False
    _catching_up: asyncio.Task | None = None

    async def deployment_changed(self, message):
        trace("consumer", self.deployment_id)
        self._latest, self._behind = message.get("change"), True
        if self._catching_up is None or self._catching_up.done():
            self._catching_up = asyncio.create_task(self._catch_up())

    async def _catch_up(self) -> None:
        """Render until the page shows the newest change. The messages that arrive during a render
        cost one render after it, not one each: a burst of changes never queues renders of states
        that are already gone, and the last one is always shown."""
        try:
            while self._behind:
                self._behind = False
                await self._show(self._latest)
        except Exception:
            logger.exception("live fragments of deployment %s failed", self.deployment_id)
            await self.close(code=1011)

    async def disconnect(self, code):
        if self._catching_up is not None:
            self._catching_up.cancel()
        await super().disconnect(code)

    async def _show(self, change: str | None) -> None:
        if change is None:
            await self.push(traced=self.deployment_id)  # a message from elsewhere: rendered on its own
            return
        started, parts = await shared_renders.render(self.deployment_id, self.tab, change, self.scope["user"].pk)
        header = parts.header if parts.header is None else [(TAB_FRAGMENTS[self.tab][0], parts.header)]
        await self.send_rendered(started, header, traced=self.deployment_id)
        if parts.header is not None:
            await self.send_rendered(started, await parts.fragments())
            trace("completed", self.deployment_id)

    async def send_rendered(self, started: float, html, *, traced: int | None = None):
        """As `FragmentConsumer.send_rendered`; a render given as its fragments ((template name, html)
        pairs) sends only those that differ from what this socket sent of them last. A message that
        changed nothing the page shows (a reconcile that applied nothing new, a build row's refresh)
        sends nothing, and a change sends only what it changed: every fragment sent is swapped in
        whole, and each swap replaces what the user may be about to click (the tree's buttons)."""
        if not isinstance(html, list):
            await super().send_rendered(started, html, traced=traced)
            return
        if started < self.sent_from:
            return
        fresh = [(name, part) for name, part in html if self._shown.get(name) != hash(part)]
        if not fresh:
            self.sent_from = started  # what this render read, the page shows already
            return
        self._shown.update((name, hash(part)) for name, part in fresh)
        await super().send_rendered(started, "".join(part for _, part in fresh), traced=traced)

    def render(self) -> list[tuple[str, str]] | str | None:
        # Access is checked again on every push: a member removed from the team stops receiving.
        try:
            deployment, membership = deployment_for(self.scope["user"], self.deployment_id)
        except (Http404, PermissionDenied):
            gone = Deployment.objects.filter(pk=self.deployment_id, state=DeploymentState.DELETED).exists()
            return deleted_notice(self.deployment_id) if gone else None
        return render_fragments(deployment, self.tab, membership.role)


def _member(deployment: Deployment, role: str) -> Membership:
    # The role is all the context takes of the membership: a row of that role stands for any member's.
    return Membership(team_id=deployment.project.team_id, role=role)


def header_context_for(deployment: Deployment, role: str) -> dict:
    """The header's context as any member with ``role`` sees it, swapped out-of-band."""
    return {**selectors.header_context(deployment, _member(deployment, role)), "oob": True}


def render_fragments(
    deployment: Deployment, tab: str, role: str, *, header: dict | None = None, skip_header: bool = False
) -> list[tuple[str, str]]:
    """A deployment tab's live fragments as any member with ``role`` sees them, as (template name,
    html) pairs: the same for each of them (`SharedRenders`). ``deployment`` as
    `access.live_deployment` reads it; ``header``: its `header_context_for` that role, when read
    already; ``skip_header``: all but the header (sent)."""
    context = selectors.deployment_context(deployment, _member(deployment, role), tab=tab, header=header)
    context["oob"] = True
    names = TAB_FRAGMENTS[tab][1:] if skip_header else TAB_FRAGMENTS[tab]
    return [(name, render_to_string(name, context)) for name in names]


def deleted_notice(deployment_id: int) -> str:
    return render_to_string("deployments/_deleted_notice.html", {"deployment_id": deployment_id})


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any other websocket path: refused with 4404 before anything else happens (no route, no traceback)."""

    async def connect(self):
        await self.accept()
        await self.close(code=4404, reason="No such websocket endpoint.")
