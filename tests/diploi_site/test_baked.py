"""Reads compiled once (`diploi_site.baked`): the same results as their querysets, one query each."""

import threading

import pytest
from django.db import connection, connections
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment, DeploymentStatus, Membership, Operation
from diploi_site.baked import BakedQuery, NotBakeable

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployments(make_project):
    project = make_project("static-nginx")
    made = []
    for name in ("one", "two"):
        deployment = Deployment.objects.create(
            project=project,
            name=name,
            stage="production",
            template_version=project.template.current_version,
            namespace=f"ns-{name}",
        )
        DeploymentStatus.objects.create(deployment=deployment, health="green", reason=f"{name} is fine", tree={})
        made.append(deployment)
    Operation.objects.create(deployment=made[0], kind=Operation.Kind.RESTART, target="web")
    return made


def joined(deployment_id):
    return (
        Deployment.objects.select_related("project__team", "status")
        .defer("project__repository")
        .annotate(operation_count=Count("operations"))
        .filter(pk=deployment_id)
    )


def test_it_gives_what_its_queryset_gives_from_one_query_each(deployments):
    baked = BakedQuery(joined)
    for deployment in [*deployments, *deployments]:
        with CaptureQueriesContext(connection) as queries:
            (found,) = baked(deployment.pk)
            seen = (found.name, found.project.team.name, found.status.reason, found.operation_count)
        (expected,) = joined(deployment.pk)
        assert seen == (expected.name, expected.project.team.name, expected.status.reason, expected.operation_count)
        assert found.get_deferred_fields() == expected.get_deferred_fields() == set()
        assert found.project.get_deferred_fields() == {"repository"}
        assert len(queries) == 1, [q["sql"] for q in queries]  # the joined rows came with it
        assert queries[0]["sql"] == str(joined(deployment.pk).query)
    assert [d.operation_count for d in (baked(d.pk)[0] for d in deployments)] == [1, 0]
    assert baked(max(d.pk for d in deployments) + 1) == []


def test_it_compiles_its_queryset_once(deployments):
    built = []

    def counted(deployment_id):
        built.append(deployment_id)
        return joined(deployment_id)

    baked = BakedQuery(counted)
    for deployment in deployments:
        baked(deployment.pk)
    assert len(built) == 2  # for two sets of placeholders (neither an id), at the first call only
    assert not {d.pk for d in deployments} & set(built)


def test_values_several_ids_and_an_id_used_twice(deployments, developer):
    team_id = deployments[0].project.team_id
    roles = BakedQuery(
        lambda team, user: Membership.objects.filter(team_id=team, user_id=user).values_list("user_id", "role"),
        arity=2,
    )
    assert roles(team_id, developer.pk) == [(developer.pk, "developer")]
    assert roles(team_id + 1, developer.pk) == []
    names = BakedQuery(
        lambda pk: Deployment.objects.filter(pk__gte=pk).exclude(pk__gt=pk).order_by("pk").values("name", "namespace")
    )
    assert names(deployments[1].pk) == [{"name": "two", "namespace": "ns-two"}]


def test_querysets_it_cannot_compile_once_are_refused(deployments):
    everything = Deployment.objects.all()
    shapes = BakedQuery(lambda pk: everything.filter(pk__lt=0) if pk < -8_000_000_000 else everything)
    with pytest.raises(NotBakeable, match="depends on its parameters"):
        shapes(deployments[0].pk)
    derived = BakedQuery(lambda pk: everything.filter(name=str(pk)))
    with pytest.raises(NotBakeable, match="derived from an id"):
        derived(deployments[0].pk)
    related = BakedQuery(lambda pk: deployments[0].operations.filter(pk=pk))
    with pytest.raises(NotBakeable, match="related manager"):
        related(1)
    prefetching = BakedQuery(lambda pk: everything.filter(pk=pk).prefetch_related("operations"))
    with pytest.raises(NotBakeable, match="prefetch_related"):
        prefetching(deployments[0].pk)


def test_ids_it_is_called_with(deployments):
    baked = BakedQuery(joined)
    with pytest.raises(TypeError):
        baked(str(deployments[0].pk))
    with pytest.raises(TypeError):
        baked(deployments[0].pk, deployments[1].pk)
    with CaptureQueriesContext(connection) as queries:
        assert baked(2**63) == [] and baked(-(2**64)) == []  # no row has such an id
    assert len(queries) == 0


@pytest.mark.django_db(transaction=True)
def test_each_thread_reads_on_its_own_connection(deployments):
    baked = BakedQuery(joined)
    assert baked(deployments[0].pk)[0].name == "one"  # baked on this thread
    found = []

    def read() -> None:
        try:
            found.append((baked(deployments[1].pk)[0].name, id(connections["default"])))
        finally:
            connections.close_all()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert found[0][0] == "two"
    assert found[0][1] != id(connections["default"])
