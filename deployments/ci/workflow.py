"""The GitHub Actions workflow the project settings page offers: `.github/workflows/diploi.yml`.

Pure: a template spec and a few addresses in, YAML text out. On every push, one job per built
component asks Diploi which builds the commit is for (``POST /api/v1/builds/started`` with the
branch; none: the job stops there), builds and pushes the image with `docker/build-push-action`,
and reports the pushed digest, or the failure, for each of those builds (docs/api.md).
"""

from __future__ import annotations

import yaml

from templates_catalog.spec import TemplateSpec

WORKFLOW_PATH = ".github/workflows/diploi.yml"
TOKEN_SECRET = "DIPLOI_BUILD_TOKEN"  # noqa: S105 - the name of a repository secret, not its value
REGISTRY_USERNAME_SECRET = "DIPLOI_REGISTRY_USERNAME"  # noqa: S105 - a secret's name
REGISTRY_PASSWORD_SECRET = "DIPLOI_REGISTRY_PASSWORD"  # noqa: S105 - a secret's name
BUILD_PUSH_ACTION = "docker/build-push-action@v6"

_CALL = 'curl --fail-with-body --silent --show-error -X POST -H "Authorization: Bearer $DIPLOI_TOKEN" ' \
    '-H "Content-Type: application/json"'  # fmt: skip

STARTED = f"""\
run_url="$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID"
body=$(jq -n --arg branch "$GITHUB_REF_NAME" --arg component "$COMPONENT" --arg commit "$GITHUB_SHA" \\
  --arg run_url "$run_url" --arg commit_message "$COMMIT_MESSAGE" \\
  '{{branch: $branch, component: $component, commit: $commit, run_url: $run_url, commit_message: $commit_message}}')
response=$({_CALL} --data "$body" "$DIPLOI_API/builds/started")
echo "$response" | jq .
echo "ids=$(echo "$response" | jq -r '[.builds[].id] | join(" ")')" >> "$GITHUB_OUTPUT"
echo "images=$(echo "$response" | jq -r '[.builds[].image] | unique | join(",")')" >> "$GITHUB_OUTPUT"
"""
PROGRESS = f"""\
for id in $BUILD_IDS; do
  {_CALL} --data '{{"step": 2, "steps": 3, "text": "Building and pushing the image"}}' \\
    "$DIPLOI_API/builds/$id/progress"
done
"""
SUCCEEDED = f"""\
for id in $BUILD_IDS; do
  {_CALL} --data "$(jq -n --arg digest "$DIGEST" '{{digest: $digest}}')" "$DIPLOI_API/builds/$id/succeeded"
done
"""
FAILED = f"""\
message="The GitHub Actions run failed: $GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID"
for id in $BUILD_IDS; do
  {_CALL} --data "$(jq -n --arg message "$message" '{{message: $message}}')" "$DIPLOI_API/builds/$id/failed"
done
"""


class _Dumper(yaml.SafeDumper):
    """Scripts as `|` blocks, keys in the order written, no anchors."""

    def ignore_aliases(self, data) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def built_components(spec: TemplateSpec) -> list[tuple[str, str, str]]:
    """(component id, Dockerfile path, context) of every component built from the repository."""
    built = []
    for component in spec.components:
        if component.build is None:
            continue
        context = component.build.context.strip("/") or "."
        dockerfile = component.build.dockerfile
        path = dockerfile if context == "." else f"{context}/{dockerfile}"
        built.append((component.id, path, context))
    return built


def github_workflow(*, spec: TemplateSpec, api_url: str, registry_host: str) -> str:
    """The workflow's YAML text. ``api_url``: Diploi's API root (…/api/v1); ``registry_host``: the
    registry the images are pushed to (docker/login-action's ``registry``)."""
    include = [{"component": c, "dockerfile": f, "context": ctx} for c, f, ctx in built_components(spec)]
    has_builds = "steps.started.outputs.ids != ''"
    ids = {"BUILD_IDS": "${{ steps.started.outputs.ids }}"}
    workflow = {
        "name": "Diploi",
        "on": {"push": {}, "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        "jobs": {
            "build": {
                "name": "Build ${{ matrix.component }}",
                "runs-on": "ubuntu-latest",
                "strategy": {"fail-fast": False, "matrix": {"include": include}},
                "env": {
                    "DIPLOI_API": api_url.rstrip("/"),
                    "DIPLOI_TOKEN": f"${{{{ secrets.{TOKEN_SECRET} }}}}",
                    "COMPONENT": "${{ matrix.component }}",
                },
                "steps": [
                    {
                        "name": "Ask Diploi which builds this commit is for",
                        "id": "started",
                        # Through the environment, never into the script: a message is the pusher's text.
                        "env": {"COMMIT_MESSAGE": "${{ github.event.head_commit.message }}"},
                        "run": STARTED,
                    },
                    {"uses": "actions/checkout@v4", "if": has_builds},
                    {"name": "Report progress", "if": has_builds, "env": ids, "run": PROGRESS},
                    {"uses": "docker/setup-buildx-action@v3", "if": has_builds},
                    {
                        "uses": "docker/login-action@v3",
                        "if": has_builds,
                        "with": {
                            "registry": registry_host,
                            "username": f"${{{{ secrets.{REGISTRY_USERNAME_SECRET} }}}}",
                            "password": f"${{{{ secrets.{REGISTRY_PASSWORD_SECRET} }}}}",
                        },
                    },
                    {
                        "name": "Build and push",
                        "id": "build",
                        "uses": BUILD_PUSH_ACTION,
                        "if": has_builds,
                        "with": {
                            "context": "${{ matrix.context }}",
                            "file": "${{ matrix.dockerfile }}",
                            "push": True,
                            "tags": "${{ steps.started.outputs.images }}",
                        },
                    },
                    {
                        "name": "Report the image to Diploi",
                        "if": f"success() && {has_builds}",
                        "env": {**ids, "DIGEST": "${{ steps.build.outputs.digest }}"},
                        "run": SUCCEEDED,
                    },
                    {
                        "name": "Report the failure to Diploi",
                        "if": f"failure() && {has_builds}",
                        "env": ids,
                        "run": FAILED,
                    },
                ],
            }
        },
    }
    header = (
        f"# {WORKFLOW_PATH}: builds this project's images for Diploi and reports them (docs/api.md).\n"
        f"# Repository secrets: {TOKEN_SECRET} (the project's build token), {REGISTRY_USERNAME_SECRET} and\n"
        f"# {REGISTRY_PASSWORD_SECRET} (push access to {registry_host}).\n"
    )
    return header + yaml.dump(workflow, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
