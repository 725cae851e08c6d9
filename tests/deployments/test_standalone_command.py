"""Smoke test: `manage.py standalone` as a user starts it, in its own process."""

import os
import re
import signal
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from queue import Empty, Queue
from threading import Thread

from websockets.sync.client import connect

from tests.support import free_port, python_command, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_it_serves_pages_and_websockets_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "KUBECONFIG", "KUBE_API_URL")}
    env.update(DIPLOI_DATA_DIR=str(tmp_path), PYTHONUNBUFFERED="1", KUBECONFIG=str(tmp_path / "no-kubeconfig"))
    process = subprocess.Popen(
        python_command("manage.py", "standalone", "--port", str(port)),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: Queue[str] = Queue()
    Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    output: list[str] = []

    def password_printed():
        try:
            while True:
                output.append(lines.get_nowait())
        except Empty:
            pass
        match = re.search(r"sign in as “admin” with password (\S+)", "".join(output))
        return match and match.group(1)

    try:
        password = wait_for(password_printed, timeout=60, what="standalone to print the first admin's password")
        base = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: urllib.request.urlopen(f"{base}/healthz", timeout=2).read() == b"ok", timeout=30, what="healthz"
        )

        session = _sign_in(base, "admin", password)
        dashboard = session.open(f"{base}/projects/", timeout=5).read().decode()
        assert "No projects yet" in dashboard
        team_path = re.search(r'ws-connect="(/ws/teams/\d+/\?page=\d+)"', dashboard).group(1)

        cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookie_jar)
        with connect(
            f"ws://127.0.0.1:{port}{team_path}",
            additional_headers={"Cookie": cookie, "Origin": base},
            open_timeout=10,
        ) as websocket:
            assert 'id="project-list"' in websocket.recv(timeout=10)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, "".join(output)


class _Session:
    def __init__(self):
        import http.cookiejar

        self.cookie_jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookie_jar))

    def open(self, url, data=None, timeout=5):
        return self.opener.open(url, data=data, timeout=timeout)


def _sign_in(base: str, username: str, password: str) -> _Session:
    session = _Session()
    page = session.open(f"{base}/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    request = urllib.request.Request(f"{base}/accounts/login/", data=form.encode(), headers={"Referer": base + "/"})
    response = session.opener.open(request, timeout=5)
    assert response.url.endswith("/projects/"), "sign-in did not land on the dashboard"
    return session
