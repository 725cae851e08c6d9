"""The build state machine and the rollout, through the services (real database, real Git)."""

import pytest
from django.core.exceptions import ValidationError

from deployments import services
from deployments.builds import services as builds
from deployments.builds.models import Build
from deployments.models import ActivityEntry, Operation

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def test_it_queues_the_first_build_of_a_new_staging_deployment_at_the_branch_head(staging, repository):
    build = Build.objects.get(deployment=staging)
    assert (build.component, build.state, build.trigger) == ("app", "queued", "created")
    assert build.commit_sha == repository.first
    assert build.image.endswith(f"/{staging.project.slug}/app")
    assert not build.simulated


def test_a_build_of_the_branch_head_shows_the_head_commits_first_line(staging, repository, developer):
    assert Build.objects.get(deployment=staging).commit_message == "first"
    head = repository.commit("Add the shop\n\nWith a long body\nover lines.")
    (build,) = builds.builds_request(deployment=staging, trigger="deploy_latest", triggered_by=developer)
    assert (build.commit_sha, build.commit_message) == (head, "Add the shop")


def test_a_development_deployment_builds_nothing(built_project, developer):
    deployment = services.deployment_create(project=built_project, name="dev", stage="development", actor=developer)
    assert not Build.objects.filter(deployment=deployment).exists()
    with pytest.raises(ValidationError, match="builds nothing"):
        builds.builds_request(deployment=deployment, trigger="deploy_latest", triggered_by=developer)


def test_nothing_runs_until_the_first_build_succeeded(staging):
    target = staging.render_target()
    app = staging.spec.component("app")
    assert target.awaits_build(app)
    from deployments.cluster.connection import cluster_settings
    from deployments.cluster.manifests import render

    kinds = {(o["kind"], o["metadata"]["name"]) for o in render(target, cluster_settings())}
    assert ("Deployment", "app") not in kinds and ("StatefulSet", "app") not in kinds
    assert ("StatefulSet", "postgres") in kinds


def test_a_succeeded_build_rolls_the_deployment_out_pinned_by_digest(staging):
    build = Build.objects.get(deployment=staging)
    builds.build_started(build_id=build.pk)
    builds.build_progress(build_id=build.pk, step=2, steps=5, text="[2/5] RUN pip install")
    before = staging.desired_generation
    builds.build_succeeded(build_id=build.pk, digest=DIGEST_A)
    staging.refresh_from_db()
    assert staging.built_images == {"app": f"{build.image}@{DIGEST_A}"}
    assert staging.built_commit == build.commit_sha
    assert staging.desired_generation == before + 1
    workload = next(
        o
        for o in staging_objects(staging)
        if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == "app"
    )
    assert workload["spec"]["template"]["spec"]["containers"][0]["image"] == f"{build.image}@{DIGEST_A}"
    rollout = Operation.objects.filter(deployment=staging, message__startswith="Rollout").get()
    assert "app none → sha256:aaaaaaaaaaaa" in rollout.message
    assert ActivityEntry.objects.filter(deployment=staging, action="deployment.rolled_out").exists()
    # Reported twice (a redelivered report): nothing changes.
    builds.build_succeeded(build_id=build.pk, digest=DIGEST_A)
    assert Operation.objects.filter(deployment=staging, message__startswith="Rollout").count() == 1


def staging_objects(deployment):
    from deployments.cluster.connection import cluster_settings
    from deployments.cluster.manifests import render

    return render(deployment.render_target(), cluster_settings())


def test_a_failed_build_keeps_the_last_good_version(staging, repository, developer):
    first = Build.objects.get(deployment=staging)
    builds.build_succeeded(build_id=first.pk, digest=DIGEST_A)
    repository.commit("second")
    (second,) = builds.builds_request(deployment=staging, trigger="deploy_latest", triggered_by=developer)
    assert second.commit_sha != first.commit_sha
    builds.build_failed(build_id=second.pk, message="RUN pip install: exit code 1")
    staging.refresh_from_db()
    assert staging.built_images == {"app": f"{first.image}@{DIGEST_A}"}
    second.refresh_from_db()
    assert (second.state, second.message) == ("failed", "RUN pip install: exit code 1")


def test_a_newer_build_cancels_the_older_queued_one(staging, repository, developer):
    first = Build.objects.get(deployment=staging)
    repository.commit("second")
    (second,) = builds.builds_request(deployment=staging, trigger="deploy_latest", triggered_by=developer)
    first.refresh_from_db()
    assert first.state == "cancelled"
    assert first.message == f"Replaced by build #{second.pk} of {second.short_sha}"
    # A late report for the cancelled build is refused; the newer one is untouched.
    with pytest.raises(builds.BuildStateConflict):
        builds.build_succeeded(build_id=first.pk, digest=DIGEST_B)
    staging.refresh_from_db()
    assert staging.built_images == {}
    assert ActivityEntry.objects.filter(deployment=staging, action="build.cancelled").exists()


def test_an_older_commit_finishing_late_never_rolls_back(staging, repository, developer):
    first = Build.objects.get(deployment=staging)
    builds.build_started(build_id=first.pk)
    repository.commit("second")
    (second,) = builds.builds_request(
        deployment=staging, trigger="api", commit_sha=repository.commit("third"), components=["app"]
    )
    builds.build_succeeded(build_id=second.pk, digest=DIGEST_B)
    staging.refresh_from_db()
    assert staging.built_images["app"].endswith(DIGEST_B)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: builds.build_succeeded(build_id=b, digest="sha256:xyz"), "digest must be"),
        (lambda b: builds.build_succeeded(build_id=b, digest="a" * 64), "digest must be"),
        (lambda b: builds.build_progress(build_id=b, step=6, steps=5, text=""), "step must be"),
        (lambda b: builds.build_progress(build_id=b, step=0, steps=0, text=""), "step must be"),
        (lambda b: builds.build_started(build_id=b + 1000), "There is no build"),
    ],
)
def test_bad_reports_get_a_clear_error_and_change_nothing(staging, call, message):
    build = Build.objects.get(deployment=staging)
    with pytest.raises(ValidationError, match=message):
        call(build.pk)
    build.refresh_from_db()
    assert build.state == "queued"


def test_a_request_names_known_components_and_full_commits(staging):
    with pytest.raises(ValidationError, match="no built component “web”"):
        builds.builds_request(deployment=staging, trigger="api", commit_sha="a" * 40, components=["web"])
    with pytest.raises(ValidationError, match="40 hexadecimal"):
        builds.builds_request(deployment=staging, trigger="api", commit_sha="abc123")


def test_an_unreachable_repository_is_a_clear_error(staging, developer):
    staging.project.repository = "https://github.invalid/acme/shop.git"
    staging.project.save(update_fields=["repository"])
    with pytest.raises(ValidationError, match="Cannot resolve branch main: https://github.invalid/acme/shop.git"):
        builds.builds_request(deployment=staging, trigger="deploy_latest", triggered_by=developer)


def test_on_the_emulator_an_unreachable_repository_gives_a_labelled_simulated_commit(make_project, developer, settings):
    settings.CLUSTER_SIMULATED = True
    project = make_project("django-postgres")  # github.com: not reachable from here
    deployment = services.deployment_create(project=project, name="staging", stage="staging", actor=developer)
    build = Build.objects.get(deployment=deployment)
    assert build.simulated and len(build.commit_sha) == 40
    assert build.commit_message.startswith("Simulated commit")


def test_a_deployment_is_created_even_when_its_first_build_cannot_start(make_project, developer, settings):
    settings.CLUSTER_SIMULATED = False
    project = make_project("django-postgres")
    project.repository = "https://github.invalid/acme/shop.git"
    project.save(update_fields=["repository"])
    deployment = services.deployment_create(project=project, name="staging", stage="staging", actor=developer)
    build = Build.objects.get(deployment=deployment)
    assert build.state == "failed"
    assert "Cannot resolve branch main" in build.message


def test_the_sweeper_sends_a_lost_cluster_build_again_and_leaves_external_ones_alone(staging, settings):
    from datetime import timedelta

    from django.utils import timezone

    from deployments.sweeper import Sweeper

    build = Build.objects.get(deployment=staging)
    later = timezone.now() + timedelta(seconds=settings.LOST_TASK_SECONDS + 5)
    assert Sweeper().sweep(now=timezone.now()).get("build") is None  # not overdue yet
    sent = Sweeper().sweep(now=later)
    assert sent["build"] == [build.pk]
    build.refresh_from_db()
    assert build.due_at > timezone.now()  # due again: the copy it sent has time to start
    Build.objects.filter(pk=build.pk).update(runner="external")
    assert "build" not in Sweeper().sweep(now=later + timedelta(hours=1))


@pytest.fixture
def two_built_components(catalog, built_project):
    """The project's template, with a second component (``worker``) built from the same repository."""
    import copy

    from templates_catalog.models import TemplateVersion
    from templates_catalog.spec import TemplateSpec

    entry = catalog["django-postgres"]
    data = entry.current_version.spec.to_dict()
    worker = copy.deepcopy(next(c for c in data["components"] if c["id"] == "app"))
    worker.update(id="worker", name="Worker", public=[])
    data["components"] = [*data["components"], worker]
    TemplateSpec.from_dict(data)  # still a well-formed spec
    entry.current_version = TemplateVersion.objects.create(
        template=entry, version="9.9-worker", digest="with-a-worker", spec_data=data, source="# with a worker"
    )
    entry.save(update_fields=["current_version"])
    return built_project


def test_every_component_runs_the_same_commit_never_a_mix(two_built_components, repository, developer):
    staging = services.deployment_create(project=two_built_components, name="staging", stage="staging", actor=developer)
    app, worker = (Build.objects.get(deployment=staging, component=c) for c in ("app", "worker"))
    assert app.commit_sha == worker.commit_sha == repository.first

    builds.build_succeeded(build_id=app.pk, digest=DIGEST_A)
    staging.refresh_from_db()
    assert staging.built_images == {}  # the worker of that commit is not built yet: nothing runs
    builds.build_succeeded(build_id=worker.pk, digest=DIGEST_B)
    staging.refresh_from_db()
    first_images = {"app": f"{app.image}@{DIGEST_A}", "worker": f"{worker.image}@{DIGEST_B}"}
    assert (staging.built_commit, staging.built_images) == (repository.first, first_images)

    repository.commit("second")
    new_app, new_worker = builds.builds_request(deployment=staging, trigger="deploy_latest", triggered_by=developer)
    builds.build_succeeded(build_id=new_app.pk, digest="sha256:" + "c" * 64)
    builds.build_failed(build_id=new_worker.pk, message="RUN pip install: exit code 1")
    staging.refresh_from_db()
    # The new app without its worker would be a mix of two commits: both stay on the first.
    assert (staging.built_commit, staging.built_images) == (repository.first, first_images)
