"""Bad input never breaks the server: a bounded fuzz of every dashboard and admin URL and form
(issue 15, item 9), with Hypothesis on a fixed seed, as a signed-in team admin and superuser.

Each generated request goes through the real stack (middleware, views, forms, services, the
database); any exception or 5xx fails the test with the input that caused it.
"""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from deployments import services
from deployments.models import Membership, Role

HUGE_ID = "9" * 23  # overflows a 64-bit integer

# (method, path, the fields its forms read): {d} a deployment id, {p} a project id, {t} a team id,
# {x} a fuzzed word (a service id, a template slug).
DEPLOYMENT_FIELDS = ("name", "env", "custom_domains", "addons", "delete_storage", "enabled", "confirm", "tab")
ENDPOINTS = [
    ("GET", "/", ()),
    ("GET", "/healthz", ()),
    ("GET", "/readyz", ("verbose",)),
    ("GET", "/profile/", ()),
    ("POST", "/profile/", ("name", "public_key")),
    ("POST", "/profile/keys/remove/", ("fingerprint",)),
    ("POST", "/teams/switch/", ("team",)),
    ("GET", "/teams/{t}/members/", ("page",)),
    ("POST", "/teams/{t}/members/", ("username", "role", "remove")),
    ("GET", "/projects/", ("page",)),
    ("GET", "/projects/new/", ("template",)),
    ("POST", "/projects/new/", ("template", "name", "slug", "repository")),
    ("GET", "/projects/{p}/", ("page",)),
    ("GET", "/projects/{p}/settings/", ()),
    ("POST", "/projects/{p}/settings/", ("name", "repository")),
    ("POST", "/projects/{p}/delete/", ()),
    ("POST", "/projects/{p}/builds/token/", ("action",)),
    ("POST", "/projects/{p}/builds/webhook/", ("action",)),
    ("POST", "/projects/{p}/builds/deploy-key/", ("action",)),
    ("POST", "/projects/{p}/builds/runner/", ("build_runner",)),
    ("GET", "/projects/{p}/builds/diploi.yml", ()),
    ("GET", "/projects/{p}/deployments/new/", ()),
    ("POST", "/projects/{p}/deployments/new/", ("name", "stage", "branch", "size", "addons", "env", "custom_domains")),
    ("GET", "/projects/{p}/deployments/check-name/", ("name", "stage")),
    ("GET", "/deployments/{d}/", ()),
    ("GET", "/deployments/{d}/status/", ()),
    ("GET", "/deployments/{d}/options/", ()),
    ("GET", "/deployments/{d}/activity/", ()),
    ("POST", "/deployments/{d}/restart/", ("service", "next", "tab")),
    ("POST", "/deployments/{d}/retry/", ()),
    ("GET", "/deployments/{d}/describe/{x}/", ()),
    ("POST", "/deployments/{d}/options/rename/", ("name",)),
    ("POST", "/deployments/{d}/options/environment/", ("env",)),
    ("POST", "/deployments/{d}/options/reveal/", ("service", "name")),
    ("POST", "/deployments/{d}/options/domains/", ("custom_domains",)),
    ("POST", "/deployments/{d}/options/addons/", ("addons", "delete_storage")),
    ("POST", "/deployments/{d}/options/enabled/", ("enabled",)),
    ("POST", "/deployments/{d}/delete/", ("confirm",)),
    ("GET", "/deployments/{d}/logs/", ("pod", "component", "container", "source", "previous")),
    ("GET", "/deployments/{d}/logs.txt", ("since", "lines", "previous", "source", "pod", "component", "container")),
    ("POST", "/deployments/{d}/deploy-latest/", ()),
    ("POST", "/deployments/{d}/actions/run/", ("action", "confirmed")),
    ("GET", "/deployments/{d}/actions/confirm/", ("action",)),
    ("GET", "/deployments/{d}/actions/{x}/", ()),
    ("POST", "/deployments/{d}/actions/{x}/cancel/", ()),
    ("GET", "/deployments/{d}/actions/{x}/output.txt", ()),
    ("GET", "/deployments/{d}/builds/{x}/", ()),
    ("GET", "/deployments/{d}/builds/{x}/log.txt", ()),
    ("GET", "/catalog/", ()),
    ("GET", "/catalog/{x}/", ()),
    ("GET", "/admin/", ()),
    ("GET", "/admin/deployments/deployment/", ("q", "o", "p", "lifecycle", "stage")),
    ("GET", "/admin/deployments/deployment/{d}/change/", ()),
    ("POST", "/admin/deployments/deployment/{d}/change/", ("name", "branch", "size", "enabled", "enabled_addons",
                                                           "env_overrides", "custom_domains", "image_overrides")),
    ("POST", "/admin/deployments/deployment/", ("action", "_selected_action", "post")),
    ("GET", "/admin/deployments/project/{p}/change/", ()),
    ("POST", "/admin/deployments/project/{p}/change/", ("name", "repository")),
    ("GET", "/admin/deployments/team/{t}/change/", ()),
    ("GET", "/admin/deployments/activityentry/", ("q", "o", "p")),
    ("GET", "/admin/deployments/operation/", ("q", "o", "p")),
    ("GET", "/admin/templates_catalog/template/", ("q", "o")),
    ("GET", "/accounts/login/", ("next",)),
    ("POST", "/accounts/login/", ("username", "password", "next")),
    ("POST", "/admin/login/", ("username", "password", "next")),
    ("POST", "/accounts/logout/", ("next",)),
]  # fmt: skip
NASTY = [
    "\x00", "a\x00b", HUGE_ID, "-1", "0", "foo", "/", "//evil.example", "../..", "%", "{}", "[" * 5000,
    '{"a":' * 3000, "ſhop.example.com", "x.example.com.", "A" * 5000, "${A}${A}", "app.X=${X}", "\u202e", "😀",
    "' OR 1=1 --", "<script>alert(1)</script>", "true", "development", "admin", "viewer", "api", "redis",
]  # fmt: skip
# Mostly the known-nasty values, the rest arbitrary text or numbers.
VALUES = st.one_of(st.sampled_from(NASTY), st.sampled_from(NASTY), st.text(max_size=40), st.integers().map(str))
IDS = st.one_of(st.sampled_from(["real", "real", HUGE_ID, "0"]), st.integers(min_value=0, max_value=10**6).map(str))
EXAMPLES_PER_ENDPOINT = 5
# Tried on every field of every endpoint at once, before the generated inputs.
SWEEP = ["a\x00b", HUGE_ID, "foo", "[" * 5000]


@pytest.fixture
def world(make_project, make_user, team):
    user = make_user(is_staff=True, is_superuser=True)
    Membership.objects.create(team=team, user=user, role=Role.ADMIN)
    project = make_project("fastapi-redis")
    deployment = services.deployment_create(project=project, name="fuzzed", stage="development", actor=user)
    return {"user": user, "team": team, "project": project, "deployment": deployment}


def fill(path: str, world, fuzzed_id: str, word: str) -> str:
    def pick(real: int) -> str:
        return str(real) if fuzzed_id == "real" else fuzzed_id

    return path.format(
        d=pick(world["deployment"].pk), p=pick(world["project"].pk), t=pick(world["team"].pk), x=word or "x"
    )


def check(client: Client, method: str, path: str, data: dict) -> None:
    response = client.get(path, data) if method == "GET" else client.post(path, data)
    assert response.status_code < 500, (method, path, data, response.status_code)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[f"{method} {path}" for method, path, _ in ENDPOINTS])
def test_no_request_answers_500(world, endpoint):
    method, path, fields = endpoint
    signed_in = not path.endswith("/login/")

    @settings(
        max_examples=EXAMPLES_PER_ENDPOINT,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        data=st.dictionaries(st.sampled_from(fields or ("x",)), VALUES, max_size=len(fields) or 1),
        fuzzed_id=IDS,
        word=st.sampled_from(["api", "redis", "nope", "\x00", HUGE_ID, "django-postgres", "a" * 300]),
    )
    def fuzz(data, fuzzed_id, word):
        client = Client(raise_request_exception=True)
        if signed_in:
            client.force_login(world["user"])
        check(client, method, fill(path, world, fuzzed_id, word), data)

    for value in SWEEP:
        fuzz = example(data=dict.fromkeys(fields, value), fuzzed_id="real", word=value)(fuzz)
    fuzz()


@pytest.mark.parametrize(
    "case",
    [
        ("POST", "/deployments/{d}/restart/", {"next": "foo"}),
        ("POST", "/teams/switch/", {"team": HUGE_ID}),
        ("POST", "/teams/{t}/members/", {"username": "a\x00b", "role": "viewer"}),
        ("GET", "/projects/new/", {"template": "django\x00"}),
        ("POST", "/admin/deployments/deployment/{d}/change/", {"image_overrides": "[" * 100_000}),
        ("GET", f"/deployments/{HUGE_ID}/", {}),
    ],
)
def test_the_reported_500s_are_4xx_or_a_redirect(world, case):
    method, path, data = case
    client = Client(raise_request_exception=True)
    client.force_login(world["user"])
    response = (client.get if method == "GET" else client.post)(fill(path, world, "real", "x"), data)
    assert response.status_code in (200, 302, 400, 404, 422), response.status_code


@pytest.mark.django_db(transaction=True)
async def test_an_unknown_websocket_path_is_refused_with_a_reason(close_thread_connections):
    from diploi_site.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/nosuch/", headers=[(b"origin", b"http://localhost")])
    connected, _ = await communicator.connect()
    assert connected
    closed = await communicator.receive_output()
    assert closed == {"type": "websocket.close", "code": 4404, "reason": "No such websocket endpoint."}
    await communicator.disconnect()


# ----------------------------------------------------------------------------- the JSON API and the webhook

JSON_FIELDS = ("deployment", "branch", "component", "commit", "run_url", "external_id", "step", "steps", "text",
               "digest", "message", "ref", "after", "deleted")  # fmt: skip
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False),
    st.sampled_from(NASTY), st.text(max_size=40), st.sampled_from(["main", "app", "a" * 40, "sha256:" + "a" * 64]),
)  # fmt: skip
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=5), inner, max_size=3), max_leaves=6)  # fmt: skip
API_PATHS = ["builds/started", "builds/{b}", "builds/{b}/progress", "builds/{b}/succeeded", "builds/{b}/failed"]


@pytest.fixture
def ci_world(world, tmp_path):
    """The fuzzed project builds with an external CI, from a local repository: a staging deployment
    with its first build queued, a build token and a webhook secret."""
    from deployments.builds.models import Build
    from deployments.ci import services as ci
    from tests.deployments.builds.conftest import git

    repository = tmp_path / "app.git"
    repository.mkdir()
    git("init", "-q", "-b", "main", cwd=repository)
    git(
        "-c",
        "user.email=a@example.com",
        "-c",
        "user.name=A",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
        cwd=repository,
    )
    project = world["project"]
    project.build_runner, project.repository = "external", f"file://{repository}"
    project.save(update_fields=["build_runner", "repository"])
    services.deployment_create(project=project, name="staging", stage="staging", actor=world["user"])
    build = Build.objects.get(project=project, state="queued")
    token = ci.build_token_rotate(project=project, actor=world["user"])
    secret = ci.webhook_secret_rotate(project=project, actor=world["user"])
    return {**world, "build": build, "token": token, "secret": secret}


@pytest.mark.parametrize("path", API_PATHS)
def test_no_api_request_answers_500(ci_world, path):
    build_id = str(ci_world["build"].pk)

    @settings(max_examples=25, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(
        body=st.one_of(st.dictionaries(st.sampled_from(JSON_FIELDS), JSON_VALUES, max_size=5), JSON_VALUES),
        build=st.sampled_from([build_id, build_id, "0", HUGE_ID]),
        token=st.sampled_from([ci_world["token"], ci_world["token"], "dpl_x", "\x00"]),
        raw=st.sampled_from([None, None, b"\xff\xfe", b"{" * 5000, b""]),
    )
    def fuzz(body, build, token, raw):
        import json

        client = Client(raise_request_exception=True)
        data = raw if raw is not None else json.dumps(body).encode()
        url = "/api/v1/" + path.format(b=build)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        response = client.post(url, data, content_type="application/json", **headers)
        assert response.status_code < 500, (url, data, response.status_code)
        assert response.json() is not None
        response = client.get(url, **headers)
        assert response.status_code < 500, (url, response.status_code)

    fuzz()


def test_no_webhook_delivery_answers_500(ci_world):
    import hashlib
    import hmac
    import json

    slug = ci_world["project"].slug

    @settings(max_examples=60, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(
        body=st.one_of(st.dictionaries(st.sampled_from(JSON_FIELDS), JSON_VALUES, max_size=4), JSON_VALUES),
        event=st.sampled_from(["push", "push", "ping", "issues", "", "\x00"]),
        signed=st.booleans(),
        content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]),
    )
    def fuzz(body, event, signed, content_type):
        data = json.dumps(body).encode()
        if content_type == "application/x-www-form-urlencoded":
            from urllib.parse import urlencode

            data = urlencode({"payload": data.decode()}).encode()
        signature = "sha256=" + hmac.new(ci_world["secret"].encode(), data, hashlib.sha256).hexdigest()
        client = Client(raise_request_exception=True)
        response = client.post(
            f"/hooks/github/{slug}/", data, content_type=content_type,
            HTTP_X_GITHUB_EVENT=event, HTTP_X_HUB_SIGNATURE_256=signature if signed else "sha256=00",
        )  # fmt: skip
        assert response.status_code < 500, (body, event, response.status_code)

    fuzz()
