"""Validation of template specs: the shipped templates, a corpus of broken files, and the rules one by one."""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path

import pytest
import yaml

from templates_catalog.spec import TemplateSpec
from templates_catalog.validation import (
    SpecError,
    SpecProblem,
    env_references,
    is_plausible_image,
    parse_quantity,
    parse_template,
    spec_from_data,
)
from tests.templates_catalog.conftest import BROKEN_DIR, SHIPPED_FILES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "templates.md"

# Every file of broken/ and the one problem (field path, message) it must produce.
BROKEN = {
    "action-unknown-component": ("actions[0].component", "unknown component or add-on 'worker'; expected one of: app"),
    "action-confirm-outside-stages": (
        "actions[0].confirm",
        "lists production, where this action is not offered (its stages: development)",
    ),
    "action-confirm-not-boolean": (
        "actions[0].confirm",
        "must be true, false or a list of stages (ask first only there), not a string",
    ),
    "action-timeout-too-long": ("actions[0].timeout_seconds", "must be between 1 and 86400 (it is 90000)"),
    "addon-default-off-not-toggleable": (
        "addons[0].default_enabled",
        "only a toggleable add-on can be off by default (set toggleable: true)",
    ),
    "addon-public": ("addons[0].public", "add-ons are never public; publish a component's port instead"),
    "code-volume-in-build-stage": (
        "components[0].storage.code",
        "in production (build) the volume at /app would hide the built code at /app; limit it to source stages with "
        "stages: [...]",
    ),
    "code-volume-missing": (
        "components[0].storage",
        "in development (source) the code at /app needs a volume: add one with path /app",
    ),
    "command-is-a-string": (
        "components[0].dev_command",
        "must be a list of arguments (argv), not a string; write [sh, -c, 'npm run dev'] for a shell",
    ),
    "data-path-off-volume": (
        "addons[0].data_path",
        "'/srv/pg' is not on any of this add-on's volumes, so its data would be lost on every restart",
    ),
    "env-boolean-mismatch": ("components[0].env.DEBUG.value", "must be true or false for type boolean, not 'yes'"),
    "env-integer-mismatch": ("components[0].env.WORKERS.value", "must be an integer for type integer, not 'many'"),
    "env-invalid-name": (
        "components[0].env.1BAD",
        "'1BAD' is not a valid variable name (letters, digits and _, not starting with a digit)",
    ),
    "env-string-without-value": (
        "components[0].env.GREETING.value",
        "is required (only a secret may leave it out, to have it generated)",
    ),
    "env-unknown-type": (
        "components[0].env.GREETING.type",
        "unknown type 'text'; expected string, integer, boolean or secret",
    ),
    "health-both-kinds": ("components[0].health", "must have exactly one of http (a path) or tcp (a port)"),
    "health-port-not-exposed": ("components[0].health.port", "port 8080 is not exposed (the container's port is 3000)"),
    "id-duplicate": ("addons[0].id", "duplicate id 'app' (also used by components[0])"),
    "id-headless-suffix": (
        "addons[0].id",
        "'postgres-headless' is not a valid id: '<id>-headless' names a StatefulSet's headless Service",
    ),
    "id-not-dns-label": (
        "components[0].id",
        "'My_App' is not a valid id: use lowercase letters, digits and '-', starting with a letter and ending with a "
        "letter or digit",
    ),
    "id-too-long": ("components[0].id", "must be at most 30 characters (it has 31)"),
    "image-implausible": (
        "components[0].image",
        "'Node 22' is not a valid image reference (like postgres:16 or ghcr.io/org/app:1.2)",
    ),
    "image-untagged": ("components[0].image", "'node' must pin a version tag or digest (like postgres:16)"),
    "import-clashes-with-env": (
        "components[0].imports[0]",
        "imports POSTGRES_USER, which this component already defines in its env",
    ),
    "import-matches-nothing": (
        "components[0].imports[0]",
        "'postgres.MYSQL_*' matches no variable of 'postgres' (it defines: POSTGRES_PASSWORD, POSTGRES_USER)",
    ),
    "import-rename-wildcard": (
        "components[0].imports[0].as",
        "cannot rename the wildcard import 'postgres.POSTGRES_*'; import one variable to rename it",
    ),
    "import-unknown-source": ("components[0].imports[0]", "unknown source 'pg'; expected one of: postgres"),
    "import-without-source": (
        "components[0].imports[0]",
        "'POSTGRES_USER' must be <id>.<VARIABLE>, like postgres.POSTGRES_* or postgres.POSTGRES_USER",
    ),
    "log-unknown-component": ("logs[0].component", "unknown component or add-on 'worker'; expected one of: app"),
    "missing-required-key": ("components[0].image", "is required"),
    "port-out-of-range": ("components[0].port", "must be a port between 1 and 65535 (it is 70000)"),
    "public-host-no-base-domain": (
        "components[0].public[0].host",
        "'[deployment].example.com' must end in .[base-domain]",
    ),
    "public-host-without-project": (
        "components[0].public[0].host",
        "'[component]-[deployment].[base-domain]' must end in .[project].[base-domain], with [deployment] before it "
        "(e.g. [component]-[deployment].[project].[base-domain]), so no two projects can get the same host",
    ),
    "public-host-unknown-placeholder": (
        "components[0].public[0].host",
        "unknown placeholder [team]; expected one of: [component], [deployment], [project], [base-domain]",
    ),
    "public-wrong-port": ("components[0].public[0].port", "port 8080 is not the component's port (3000)"),
    "reference-cycle": ("components[0].env.A", "reference cycle: ${A} → ${B} → ${A}"),
    "reference-optional-addon": (
        "components[0].env.CACHE",
        "references ${REDIS_HOST}, imported from the optional add-on 'redis' that a deployment may turn off; import "
        "a ready-made variable from it instead",
    ),
    "reference-secret-from-string": (
        "components[0].env.HEADER",
        "references the secret ${TOKEN}, so it must be a secret too (type: secret)",
    ),
    "reference-unclosed": ("components[0].env.URL", "has an unclosed ${"),
    "reference-undefined": (
        "components[0].env.URL",
        "references ${HOST}, which is not defined: no variable or import of this component provides it",
    ),
    "replicas-with-volume": (
        "components[0].stages.development.replicas",
        "a component with volumes in development runs one replica at most (volumes attach to one pod)",
    ),
    "repository-http": (
        "repository",
        "'http://github.com/acme/shop.git' must be an https://, ssh:// or git:// URL (or git@host:path)",
    ),
    "size-unparsable": ("components[0].storage.code.size", "'5GB' is not a storage size such as 512Mi, 5Gi or 10G"),
    "size-zero": ("components[0].storage.code.size", "'0Gi' must be greater than zero"),
    "slug-not-file-name": (
        "slug",
        "must match the file name: the file is 'slug-not-file-name.yaml', so the slug must be 'slug-not-file-name' "
        "(it is 'something-else')",
    ),
    "ssh-on-addon": ("ssh[0].component", "'postgres' is an add-on; SSH reaches components only"),
    "ssh-unknown-component": ("ssh[0].component", "unknown component 'web'; expected one of: app"),
    "ssh-user-without-deployment": (
        "ssh[0].user",
        "'[component]' must contain [deployment], so each deployment gets its own user",
    ),
    "stage-mode-invalid": ("stages.production", "must be 'source' or 'build', not 'docker'"),
    "stage-not-offered": (
        "components[0].stages.staging",
        "stage 'staging' is not offered by this template (see stages)",
    ),
    "stage-unknown": ("stages.preview", "unknown stage 'preview'; expected one of: development, staging, production"),
    "stage-without-component": (
        "stages.production",
        "no component runs in this stage (every component has 0 replicas here)",
    ),
    "status-url-wrong-port": ("status_url", "port 8080 is not the port of 'app' (3000)"),
    "storage-name-invalid": (
        "addons[0].storage.Data",
        "'Data' is not a valid storage name: use lowercase letters, digits and '-', starting with a letter and "
        "ending with a letter or digit",
    ),
    "storage-relative-path": ("addons[0].storage.data.path", "must be an absolute path (starting with /), not 'data'"),
    "storage-same-path": ("addons[0].storage.wal.path", "'/data' is already the mount path of volume 'data'"),
    "unknown-component-key": (
        "components[0].ports",
        "unknown key; expected one of: id, name, image, build, port, code_path, dev_command, command, health, env, "
        "imports, storage, public, stages, replicas, security, provide_sftp_server",
    ),
    "unknown-top-level-key": (
        "color",
        "unknown key; expected one of: slug, name, description, version, repository, status_url, stages, components, "
        "addons, ssh, logs, actions",
    ),
    "version-empty": ("version", "must not be empty"),
    "version-not-string": ("version", 'must be a string, not a number (quote it: "1.0")'),
    "wrong-type-components-mapping": ("components", "must be a list, not a mapping"),
    "wrong-type-env-list": ("components[0].env", "must be a mapping of variable names to values, not a list"),
    "yaml-duplicate-key": ("name", "duplicate key 'name' (first on line 2)"),
    "yaml-not-a-mapping": ("", "the file must be a mapping of fields (slug:, name:, ...), not a list"),
    "yaml-syntax-error": (
        "",
        "invalid YAML: while parsing a flow mapping, expected ',' or '}', but got '<stream end>' (line 10, column 1)",
    ),
}


def problems_of(text: str, filename: str = "t.yaml") -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        parse_template(text, filename)
    return caught.value.problems


def messages(text: str, filename: str = "t.yaml") -> list[tuple[str, str]]:
    return [(problem.path, problem.message) for problem in problems_of(text, filename)]


VALID = """
slug: t
name: Test
description: A small valid template.
version: "1"
stages:
  development: source
  production: build
components:
  - id: app
    name: App
    image: node:22
    port: 3000
    code_path: /app
    dev_command: [npm, run, dev]
    storage:
      code: {path: /app, size: 1Gi, stages: [development]}
"""


def with_app(extra: str, tail: str = "") -> str:
    """VALID with lines added to the app component (indented 4) and at the end."""
    return VALID + "".join(f"    {line}\n" for line in extra.strip("\n").splitlines()) + tail


# ----------------------------------------------------------------------------- shipped templates


def test_it_ships_the_required_templates():
    slugs = {path.stem for path in SHIPPED_FILES}
    assert {"django-postgres", "nextjs-postgres", "static-nginx"} <= slugs
    assert len(slugs) >= 4
    assert any("redis" in slug for slug in slugs)


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda path: path.stem)
def test_it_accepts_every_shipped_template_and_round_trips_it(path):
    spec = parse_template(path.read_text(), path.name)

    assert spec.slug == path.stem
    stored = json.loads(json.dumps(spec.to_dict()))
    assert TemplateSpec.from_dict(stored) == spec
    assert TemplateSpec.from_dict(stored).to_dict() == spec.to_dict()


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda path: path.stem)
def test_it_ships_complete_templates(path):
    spec = parse_template(path.read_text(), path.name)

    assert spec.stages == {"development": "source", "staging": "build", "production": "build"}
    assert spec.status_url and spec.logs and spec.actions
    assert spec.ssh_rule(spec.components[0].id, "development") is not None
    for component in spec.components:
        assert component.dev_command and component.command and component.health and component.public
        assert component.build is not None
        code = [v for v in component.storage if v.path == component.code_path]
        assert code and all(v.stages == ("development",) for v in code)
    if spec.addons:  # an app with services has secrets, generated per deployment
        assert any(var.generated for service in (*spec.components, *spec.addons) for var in service.env)
        assert all(component.imports for component in spec.components)
    for addon in spec.addons:
        assert addon.health is not None
        assert all(volume.stages == ("development", "staging", "production") for volume in addon.storage)
        assert ":" in addon.image and not addon.image.endswith(":latest")


def test_it_ships_a_template_with_an_optional_redis():
    specs = [parse_template(path.read_text(), path.name) for path in SHIPPED_FILES]
    redis = [addon for spec in specs for addon in spec.addons if addon.image.startswith("redis:")]
    assert redis and all(addon.toggleable for addon in redis)


def test_it_imports_every_postgres_variable_into_django():
    path = next(path for path in SHIPPED_FILES if path.stem == "django-postgres")
    spec = parse_template(path.read_text(), path.name)
    app = spec.component("app")

    assert any(entry.source == "postgres" and entry.pattern == "POSTGRES_*" for entry in app.imports)
    database_url = next(var for var in app.env if var.name == "DATABASE_URL")
    assert database_url.type == "secret"
    assert set(env_references(database_url.value)) >= {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def test_it_accepts_the_example_of_the_documentation():
    example = re.search(r"```yaml\n(.*?)```", DOCS.read_text(), re.S).group(1)

    spec = parse_template(example, "shop.yaml")

    assert spec.slug == "shop"
    assert spec.addon("redis").toggleable and not spec.addon("redis").default_enabled
    assert spec.component("web").command_for("production", "build")[-2:] == ("4", "shop.wsgi")


# ----------------------------------------------------------------------------- the broken corpus


@pytest.mark.parametrize("stem", sorted(BROKEN))
def test_it_rejects_each_broken_spec_with_its_problem(stem):
    path = BROKEN_DIR / f"{stem}.yaml"

    problems = problems_of(path.read_text(), path.name)

    assert [(p.file, p.path, p.message) for p in problems] == [(path.name, *BROKEN[stem])]


def test_it_has_every_broken_file_in_the_table():
    files = {path.stem for path in BROKEN_DIR.iterdir()}
    assert all(path.suffix == ".yaml" for path in BROKEN_DIR.iterdir())
    assert files == set(BROKEN)
    assert len(files) >= 30


def test_it_reports_the_line_of_each_problem():
    problems = problems_of((BROKEN_DIR / "port-out-of-range.yaml").read_text(), "port-out-of-range.yaml")
    assert problems[0].line == 12
    assert str(problems[0]) == (
        "port-out-of-range.yaml:12: components[0].port: must be a port between 1 and 65535 (it is 70000)"
    )


def test_it_reports_the_line_of_a_yaml_syntax_error():
    (problem,) = problems_of("slug: t\nname: [unclosed\n")
    assert problem.path == "" and problem.line == 3 and problem.message.startswith("invalid YAML:")


# ----------------------------------------------------------------------------- all at once, never a crash


def test_it_reports_all_problems_at_once():
    text = """
slug: Bad Slug
name: Many problems
description: ""
version: 1
stages: {development: source, preview: build}
components:
  - id: app
    name: App
    image: node
    port: 0
    code_path: app
    dev_command: npm run dev
    env:
      URL: http://${HOST}/
    storage:
      code: {path: /app, size: 0}
    colour: red
addons:
  - {id: app, name: Dup, image: "redis:7", port: 6379, public: [{port: 6379}]}
ssh: [{component: web, stages: [development]}]
"""
    paths = {path for path, _ in messages(text)}

    assert paths >= {
        "slug",
        "description",
        "version",
        "stages.preview",
        "components[0].image",
        "components[0].port",
        "components[0].code_path",
        "components[0].dev_command",
        "components[0].env.URL",
        "components[0].storage.code.size",
        "components[0].colour",
        "addons[0].id",
        "addons[0].public",
        "ssh[0].component",
    }
    lines = [problem.line for problem in problems_of(text)]
    assert lines == sorted(lines)


WEIRD_VALUES = [None, True, 0, -1, 1.5, "", "x", [], [1], {}, {"x": 1}, [[{}]], "${", "a" * 300]


def _paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _paths(value, (*prefix, index))


def _replaced(data, path, value):
    data = copy.deepcopy(data)
    if not path:
        return value
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda path: path.stem)
def test_it_never_crashes_on_wrong_types(path):
    data = yaml.safe_load(path.read_text())
    for where in _paths(data):
        for value in WEIRD_VALUES:
            try:
                spec_from_data(_replaced(data, where, value), path.name)
            except SpecError as exc:
                assert exc.problems, (where, value)


def test_it_never_crashes_on_odd_yaml():
    for text in [
        "",
        "---\n",
        "[]",
        "42",
        "a: !!binary aGVsbG8=",
        "? [a]\n: b",
        "a: &x [*x]",
        "a: 1\n---\nb: 2",
        "{1: 2}",
        "components: !!set {a, b}",
        "\t- nope",
    ]:
        with pytest.raises(SpecError):
            parse_template(text, "t.yaml")


def test_it_survives_alias_bombs_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    lines.append("components: *a8")
    start = time.monotonic()
    with pytest.raises(SpecError):
        parse_template("\n".join(lines), "t.yaml")
    assert time.monotonic() - start < 5


# ----------------------------------------------------------------------------- rules one by one


def test_it_accepts_the_minimal_template_and_fills_defaults():
    spec = parse_template(VALID, "t.yaml")
    app = spec.component("app")

    assert app.replicas == 1 and app.command is None and app.build is None
    assert app.storage[0].size_bytes == 1024**3
    assert spec.addons == () and spec.ssh == () and spec.repository is None


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("1", 1),
        ("1024", 1024),
        ("1Ki", 1024),
        ("5Mi", 5 * 1024**2),
        ("5Gi", 5 * 1024**3),
        ("2Ti", 2 * 1024**4),
        ("1k", 1000),
        ("1K", 1000),
        ("500M", 500 * 10**6),
        ("10G", 10 * 10**9),
        ("1T", 10**12),
        ("1.5Gi", 1610612736),
    ],
)
def test_it_parses_quantities(size, expected):
    assert parse_quantity(size) == expected


@pytest.mark.parametrize("size", ["", "5GB", "5 Gi", "-1Gi", "Gi", "1.5", "0.3Ki", "1e3", "5gi", "1Pi"])
def test_it_refuses_bad_quantities(size):
    with pytest.raises(ValueError):
        parse_quantity(size)


def test_it_stores_kubernetes_spelling_of_kilo_and_accepts_plain_bytes():
    spec = parse_template(VALID.replace("size: 1Gi", "size: 500K"), "t.yaml")
    assert (spec.components[0].storage[0].size, spec.components[0].storage[0].size_bytes) == ("500k", 500_000)
    spec = parse_template(VALID.replace("size: 1Gi", "size: 1073741824"), "t.yaml")
    assert spec.components[0].storage[0].size_bytes == 1024**3


def test_it_types_and_normalizes_env_values():
    spec = parse_template(
        with_app(
            """
env:
  PORT: 3000
  DEBUG: false
  NAME: shop
  WORKERS: {type: integer, value: "04"}
  FLAG: {type: boolean, value: "true"}
  KEY: {type: secret}
  FIXED: {type: secret, value: abc}
  LEVEL: {type: string, value: debug, stages: [development]}
"""
        ),
        "t.yaml",
    )
    env = {var.name: var for var in spec.component("app").env}

    assert (env["PORT"].type, env["PORT"].value) == ("integer", "3000")
    assert (env["DEBUG"].type, env["DEBUG"].value) == ("boolean", "false")
    assert (env["NAME"].type, env["NAME"].value) == ("string", "shop")
    assert env["WORKERS"].value == "4" and env["FLAG"].value == "true"
    assert env["KEY"].generated and not env["FIXED"].generated
    assert env["LEVEL"].stages == ("development",) and env["NAME"].stages == ("development", "production")


def test_it_treats_double_dollar_as_a_literal_dollar():
    assert env_references("a $${NOT} ${YES} $$ $x") == ["YES"]
    parse_template(with_app("env:\n  PRICE: costs $${AMOUNT}\n"), "t.yaml")


def test_it_resolves_references_in_each_stage():
    text = with_app(
        """
env:
  HOST: {type: string, value: example.com, stages: [production]}
  URL: https://${HOST}/
"""
    )
    assert messages(text) == [("components[0].env.URL", "references ${HOST}, which is not defined in development")]


def test_it_resolves_references_through_stage_overrides_and_imports():
    text = with_app(
        """
env:
  URL: http://${DB_HOST}:${PORT}/
imports:
  - {from: postgres.POSTGRES_HOST, as: DB_HOST}
stages:
  development:
    env:
      PORT: 3000
  production:
    env:
      PORT: 80
""",
        tail="addons:\n  - {id: postgres, name: PG, image: 'postgres:16', port: 5432, env: {POSTGRES_HOST: pg}}\n",
    )
    spec = parse_template(text, "t.yaml")
    assert [var.value for var in spec.component("app").env_for("production") if var.name == "PORT"] == ["80"]


def test_it_refuses_imports_from_itself_and_clashing_imports():
    tail = (
        "addons:\n"
        "  - {id: a, name: A, image: 'redis:7', port: 1, env: {HOST: a}}\n"
        "  - {id: b, name: B, image: 'redis:7', port: 2, env: {HOST: b}}\n"
    )
    assert messages(with_app("imports: [app.X, a.HOST, b.HOST]\nenv: {X: y}", tail)) == [
        ("components[0].imports[0]", "'app' cannot import from itself"),
        ("components[0].imports[2]", "imports HOST, which components[0].imports[1] imports too"),
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/shop.git",
        "ssh://git@github.com:22/acme/shop.git",
        "git://example.com/shop.git",
        "git@github.com:acme/shop.git",
    ],
)
def test_it_accepts_repository_urls(url):
    assert parse_template(VALID + f"repository: {url}\n", "t.yaml").repository == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "ftp://example.com/shop",
            "'ftp://example.com/shop' must be an https://, ssh:// or git:// URL (or git@host:path)",
        ),
        ("https://user:token@github.com/acme/shop", "must not contain credentials; Diploi provides repository access"),
        ("https://github.com/", "'https://github.com/' must name a repository path, without query or fragment"),
        ("https://exa mple.com/x", "'https://exa mple.com/x' has no valid host"),
    ],
)
def test_it_refuses_bad_repository_urls(url, message):
    assert messages(VALID + f"repository: '{url}'\n") == [("repository", message)]


@pytest.mark.parametrize(
    ("image", "plausible"),
    [
        ("postgres:16", True),
        ("ghcr.io/acme/shop:1.2.3", True),
        ("localhost:5000/shop:dev", True),
        ("redis@sha256:" + "a" * 64, True),
        ("library/nginx:1.27-alpine", True),
        ("Nginx:1", False),
        ("nginx:", False),
        ("nginx :1", False),
        ("-nginx:1", False),
        ("ghcr.io//x:1", False),
    ],
)
def test_it_knows_plausible_image_references(image, plausible):
    assert is_plausible_image(image) is plausible


def test_it_wants_the_code_volume_exactly_at_the_code_path():
    text = VALID.replace("code: {path: /app, size: 1Gi", "code: {path: /srv, size: 1Gi").replace(
        "code_path: /app", "code_path: /srv/app"
    )
    assert messages(text) == [
        (
            "components[0].storage",
            "in development (source) the code at /srv/app needs a volume: add one with path /srv/app",
        )
    ]


def test_it_refuses_latest():
    assert messages(VALID.replace("node:22", "node:latest")) == [
        ("components[0].image", "'node:latest' must pin a version tag or digest (like postgres:16), not latest")
    ]


def test_it_reads_provide_sftp_server_as_a_boolean():
    assert parse_template(VALID, "t.yaml").components[0].provide_sftp_server is False
    enabled = VALID.replace("code_path: /app", "code_path: /app\n    provide_sftp_server: true")
    assert parse_template(enabled, "t.yaml").components[0].provide_sftp_server is True
    assert messages(VALID.replace("code_path: /app", "code_path: /app\n    provide_sftp_server: yes please")) == [
        ("components[0].provide_sftp_server", "must be true or false, not a string")
    ]


def test_it_checks_the_slug_only_against_yaml_file_names():
    assert parse_template(VALID, "<upload>").slug == "t"
    assert messages(VALID, "other.yml")[0][0] == "slug"


def test_it_refuses_duplicate_ssh_rules_and_users():
    tail = """ssh:
  - {component: app, stages: [development]}
  - {component: app, stages: [development]}
"""
    assert messages(VALID + tail) == [
        ("ssh[1].stages", "'app' already has an SSH rule for development (ssh[0])"),
    ]


SECOND_COMPONENT = """  - id: api
    name: API
    image: node:22
    port: 4000
    code_path: /api
    dev_command: [node, server.js]
    storage: {code: {path: /api, size: 1Gi, stages: [development]}}
"""


def test_it_refuses_two_public_endpoints_with_one_host():
    host = '    public: [{host: "shop-[deployment].[project].[base-domain]"}]\n'
    assert messages(VALID + host + SECOND_COMPONENT + host) == [
        (
            "components[1].public[0].host",
            "gives the same host as components[0].public[0].host; use [component] or another prefix",
        ),
    ]


def test_it_lets_a_component_sit_out_a_stage_while_another_runs():
    text = VALID + SECOND_COMPONENT + "    stages: {production: {replicas: 0}}\n"
    spec = parse_template(text, "t.yaml")
    assert spec.component("api").replicas_for("production") == 0
    assert spec.component("api").replicas_for("development") == 1


def test_it_points_the_status_url_at_a_component():
    assert messages(VALID + "status_url: https://app:3000/\n")[0][0] == "status_url"
    assert messages(VALID + "status_url: http://db:3000/\n") == [
        ("status_url", "'db' is not a component; expected one of: app")
    ]
    assert parse_template(VALID + "status_url: http://app:3000/status\n", "t.yaml").status_url


def test_it_reads_log_sources_of_output_files_and_commands():
    tail = """logs:
  - {name: App, component: app}
  - {name: Errors, component: app, path: /app/logs/error.log}
  - {name: Queue, component: app, command: [node, scripts/queue-log.js]}
"""
    spec = parse_template(VALID + tail, "t.yaml")
    assert [(s.name, s.exec_command(50)) for s in spec.logs] == [
        ("App", ()),
        ("Errors", ("tail", "-n", "50", "-F", "/app/logs/error.log")),
        ("Queue", ("node", "scripts/queue-log.js")),
    ]


def test_it_refuses_a_log_source_with_both_a_path_and_a_command_or_a_shell_string():
    tail = """logs:
  - {name: Both, component: app, path: /app/x.log, command: [tail, -F, /app/x.log]}
  - {name: Shell, component: app, command: "tail -F /app/x.log"}
"""
    assert messages(VALID + tail) == [
        ("logs[0]", "give either path (a file to follow) or command (what to run), not both"),
        (
            "logs[1].command",
            "must be a list of arguments (argv), not a string; write [sh, -c, 'tail -F /app/x.log'] for a shell",
        ),
    ]
