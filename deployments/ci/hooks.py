"""`POST /hooks/github/<project>/`: GitHub's push webhook.

The signature (``X-Hub-Signature-256``, HMAC-SHA256 of the raw body with the project's webhook
secret) is checked before anything else is read: a delivery without a good one gets 401 and a log
line, and nothing else happens. Signed deliveries: ``ping`` is answered, ``push`` to a branch that
staging or production deployments follow requests their builds, anything else is 204 with the
reason in ``X-Diploi-Ignored``. CSRF does not apply here (GitHub holds no session): the signature
is the proof of origin.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from deployments.ci import services
from deployments.ci.jsonapi import ApiError, error_response, json_endpoint, json_object
from deployments.ci.sealing import UnsealError
from deployments.models import Project

logger = logging.getLogger(__name__)

SHA = re.compile(r"^[0-9a-f]{40}$")
NO_COMMIT = "0" * 40
# A push event lists up to 20 commits with their files: far more than an API report, and still well
# under Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), which bounds the body before this does.
MAX_PUSH_BYTES = 2 * 1024 * 1024


def ignored(reason: str) -> HttpResponse:
    response = HttpResponse(status=204)
    response["X-Diploi-Ignored"] = reason
    return response


def _payload(request) -> dict:
    """The event's JSON: the body itself, or its ``payload`` field when sent form-encoded."""
    body = request.body
    if request.content_type == "application/x-www-form-urlencoded":
        fields = parse_qs(body.decode("utf-8", "replace"))
        body = (fields.get("payload") or [""])[0].encode()
    return json_object(body, max_bytes=MAX_PUSH_BYTES)


@csrf_exempt
@json_endpoint("POST")
def github_push(request, project_slug: str):
    delivery = request.headers.get("X-GitHub-Delivery", "")[:64]
    project = Project.objects.filter(slug=project_slug[:30]).select_related("team").first()
    if project is None:
        logger.warning("webhook delivery %r refused: no project %r", delivery, project_slug[:30])
        return error_response(404, "No such project.")
    try:
        problem = services.webhook_signature_problem(
            project=project, body=request.body, signature=request.headers.get("X-Hub-Signature-256", "")
        )
    except UnsealError as error:
        problem = str(error)
    if problem:
        logger.warning("webhook delivery %r for project %s refused: %s", delivery, project.slug, problem)
        return error_response(401, f"Refused: {problem}.")
    event = request.headers.get("X-GitHub-Event", "")
    if event == "ping":
        return JsonResponse({"ok": True, "project": project.slug, "message": "Diploi received the ping."})
    if event != "push":
        return ignored(f"the {event or 'unnamed'} event is not used; only push is")
    data = _payload(request)
    ref, after = data.get("ref"), data.get("after")
    if not isinstance(ref, str) or not isinstance(after, str):
        raise ApiError(400, "A push event has “ref” and “after” strings.")
    if not ref.startswith("refs/heads/"):
        return ignored(f"{ref[:100]} is not a branch")
    branch = ref.removeprefix("refs/heads/")
    if data.get("deleted") or after == NO_COMMIT:
        return ignored(f"the branch {branch[:100]} was deleted")
    if not SHA.match(after):
        raise ApiError(400, "“after” must be a commit SHA (40 lowercase hex digits).")
    head = data.get("head_commit")
    message = head.get("message") if isinstance(head, dict) and head.get("id") == after else ""
    message = message if isinstance(message, str) else ""
    builds = services.push_received(project=project, branch=branch, commit_sha=after, commit_message=message)
    if not builds:
        if services.branch_followers(project=project, branch=branch):
            return ignored(f"every build of {after[:7]} was already requested")
        return ignored(f"no staging or production deployment follows the branch {branch[:100]}")
    logger.info("push of %s to %s (project %s): %d builds requested", after, branch, project.slug, len(builds))
    return JsonResponse({"builds": [services.build_summary(build) for build in builds]}, status=202)
