"""From a signed push webhook to the build's Job in the cluster (issue 12).

One project of the shipped `django-postgres` template building in the cluster, one staging
deployment following `main`, a webhook secret. Diploi runs as in production: daphne serving
`POST /hooks/github/<project>/`, a Celery worker (`run_build`), PostgreSQL and Redis; the cluster
emulator in a process of its own.

Measured per push (``--pushes``, one every 0.3 s, each a new commit): from **t0**, just before the
benchmark sends the signed push over HTTP, to **t1**, when the build's Job (`build-<id>` in the
builds namespace) is first seen in the emulator's API (polled every 5 ms). Each push replaces the
previous build (its Job is deleted), as pushes in a row do. Target: median < 1 s.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request

from benchmarks import _common as bench


def _git(*args: str, cwd) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def seed(repository_url: str):
    """The project, its staging deployment (whose first build the worker runs) and the webhook secret."""
    from deployments import services
    from deployments.ci import services as ci

    team, (user,) = bench.make_team_and_users(1, role="admin")
    project = bench.make_project(team, "django-postgres", slug="shop")
    project.repository = repository_url
    project.build_runner = "cluster"
    project.save(update_fields=["repository", "build_runner"])
    deployment = services.deployment_create(project=project, name="staging", stage="staging", actor=user)
    return project, deployment, ci.webhook_secret_rotate(project=project, actor=user)


def push(url: str, slug: str, secret: str, sha: str) -> int:
    body = json.dumps({"ref": "refs/heads/main", "after": sha, "repository": {"full_name": "acme/shop"}}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(  # noqa: S310 - our own server
        f"{url}/hooks/github/{slug}/",
        data=body,
        headers={"Content-Type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": signature},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own server
        if response.status != 202:
            raise RuntimeError(f"the push was answered {response.status}")
        return json.loads(response.read())["builds"][0]["id"]


def job_exists(emulator_url: str, namespace: str, build_id: int) -> bool:
    try:
        with urllib.request.urlopen(  # noqa: S310 - the emulator
            f"{emulator_url}/apis/batch/v1/namespaces/{namespace}/jobs/build-{build_id}", timeout=5
        ):
            return True
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer pushes (15)")
    parser.add_argument("--pushes", type=int)
    args = parser.parse_args()
    pushes = args.pushes or (15 if args.quick else 40)

    bench.require_services()
    bench.banner("build_trigger", "signed push webhook → the build's Job in the cluster (emulator)")
    emulator = bench.EmulatorProcess()
    processes = []
    try:
        bench.warn_if_busy({emulator.pid})
        bench.setup_django(emulator.url)
        from django.conf import settings

        repository = bench.LOG_DIR / "app.git"
        repository.mkdir()
        _git("init", "-q", "-b", "main", cwd=repository)
        _git("-c", "user.email=a@example.com", "-c", "user.name=A", "commit", "-q", "--allow-empty", "-m", "x",
             cwd=repository)  # fmt: skip
        project, deployment, secret = seed(f"file://{repository}")
        env = bench.base_env(emulator.url)
        worker = bench.Process(
            "worker",
            ["-m", "celery", "-A", "diploi_site", "worker", "--pool", "threads", "-c", "4", "-l", "INFO",
             "--without-heartbeat", "--without-mingle", "--without-gossip"],
            env,
        )  # fmt: skip
        processes.append(worker)
        bench.wait_for(lambda: worker.check() or "ready." in worker.log(), timeout=60, what="the Celery worker")
        web, url = bench.start_web(env)
        processes.append(web)

        namespace = settings.BUILD_NAMESPACE
        push(url, project.slug, secret, secrets.token_hex(20))  # warm-up: connections, the builds namespace
        time.sleep(1)
        latencies = []
        for _ in range(pushes):
            sha = secrets.token_hex(20)
            t0 = time.monotonic()
            build_id = push(url, project.slug, secret, sha)
            bench.wait_for(
                lambda build_id=build_id: job_exists(emulator.url, namespace, build_id),
                timeout=30,
                what=f"the Job of build {build_id} (worker log: {worker.log_path})",
                interval=0.005,
            )
            latencies.append((time.monotonic() - t0) * 1000)
            time.sleep(0.3)
    finally:
        for process in reversed(processes):
            process.stop()
        emulator.stop()

    table = bench.Table(f"build_trigger: {pushes} pushes, daphne + Celery worker on PostgreSQL/Redis, emulator")
    median = bench.median(latencies)
    table.add("push → Job created: median, ms", f"{median:.0f}", "< 1000", median < 1000)
    table.add("push → Job created: p95 / max, ms", f"{bench.percentile(latencies, 95):.0f} / {max(latencies):.0f}")
    table.print()
    raise SystemExit(1 if table.missed else 0)


if __name__ == "__main__":
    main()
