"""A signed-in person using Diploi over HTTP, and a live page following a deployment over its websocket."""

from __future__ import annotations

import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from django.test import Client
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

HEALTH = re.compile(r'class="deployment-health" data-health="(\w+)"')


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Person:
    """Posts the forms a person submits in the browser, with their session cookie and CSRF token."""

    def __init__(self, url: str, user):
        client = Client()
        client.force_login(user)  # a session row in the database the stack reads
        self.url = url
        self.csrf = secrets.token_hex(16)
        self.cookie = f"sessionid={client.cookies['sessionid'].value}; csrftoken={self.csrf}"
        self.opener = urllib.request.build_opener(_NoRedirects)

    def post(self, path: str, data: dict | list[tuple[str, str]]) -> int:
        """POST a form; returns the status (a redirect is success). Raises on 4xx/5xx."""
        request = urllib.request.Request(
            self.url + path,
            data=urllib.parse.urlencode(data).encode(),
            headers={"Cookie": self.cookie, "X-CSRFToken": self.csrf, "Referer": self.url + path},
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            if 300 <= error.code < 400:
                return error.code
            raise AssertionError(f"POST {path} answered {error.code}: {error.read()[:500]!r}") from error

    def create(self, project, name: str, stage: str = "production") -> None:
        self.post(
            f"/projects/{project.pk}/deployments/new/",
            {"name": name, "stage": stage, "branch": "main", "size": "small", "env": "", "custom_domains": ""},
        )

    def change_environment(self, deployment, value: str) -> None:
        component = deployment.spec.components[0].id
        self.post(f"/deployments/{deployment.pk}/options/environment/", {"env": f"{component}.DRILL={value}"})

    def restart(self, deployment) -> None:
        self.post(f"/deployments/{deployment.pk}/restart/", {})

    def delete(self, deployment) -> None:
        self.post(f"/deployments/{deployment.pk}/delete/", {"confirm": deployment.name})


class LivePage:
    """A deployment's Overview as the browser keeps it: a websocket that reconnects when dropped.

    Remembers each header fragment received (when, the health shown, whether
    operations were running), so a drill can check that the page followed
    the deployment and shows its current state.
    """

    def __init__(self, person: Person, deployment_id: int):
        self.address = person.url.replace("http://", "ws://") + f"/ws/deployments/{deployment_id}/?tab=overview"
        self.headers = {"Cookie": person.cookie, "Origin": person.url}
        self.headers_seen: list[tuple[float, str, bool]] = []
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="live-page", daemon=True)

    def __enter__(self) -> LivePage:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self.address, additional_headers=self.headers, open_timeout=5) as socket:
                    self.connections += 1
                    while not self._stop.is_set():
                        try:
                            message = socket.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        match = HEALTH.search(message)
                        if match:
                            self.headers_seen.append((time.monotonic(), match.group(1), "operations-inline" in message))
            except (OSError, WebSocketException):
                time.sleep(1)  # the htmx ws extension reconnects with a backoff too

    def shows(self, *, health: str, operations: bool) -> bool:
        """Whether the page now shows this health, and running operations or none."""
        return bool(self.headers_seen) and self.headers_seen[-1][1:] == (health, operations)

    def showed_operations_after(self, moment: float) -> bool:
        return any(at > moment and running for at, _, running in self.headers_seen)
