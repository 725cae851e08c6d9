"""A team's members page through HTTP: admins add, change and remove; a team always keeps an admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from deployments.models import ActivityEntry, Membership, Role


@pytest.fixture
def admin(make_member):
    return make_member(Role.ADMIN, username="ada")


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def members_url(team):
    return reverse("team_members", args=[team.pk])


def roles(team) -> dict[str, str]:
    return dict(Membership.objects.filter(team=team).values_list("user__username", "role"))


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_it_lists_members_with_their_roles(admin_client, members_url, make_member):
    make_member(Role.VIEWER, username="vic")

    page = admin_client.get(members_url).content.decode()

    assert "<tr><td>ada</td><td>Admin</td>" in page
    assert "<tr><td>vic</td><td>Viewer</td>" in page
    assert 'name="remove" value="1"' in page
    assert '<option value="developer">Developer</option>' in page


@pytest.mark.parametrize("role", [Role.VIEWER, Role.DEVELOPER])
def test_it_shows_other_roles_the_list_without_forms(client, make_member, members_url, admin, role):
    client.force_login(make_member(role))

    page = client.get(members_url).content.decode()

    assert "<tr><td>ada</td><td>Admin</td>" in page
    assert '<form method="post"' not in page.split("<main")[1]


def test_it_adds_a_member(admin_client, members_url, make_user, team):
    make_user("newcomer")

    response = admin_client.post(members_url, {"username": " newcomer ", "role": Role.DEVELOPER}, follow=True)

    assert response.redirect_chain == [(members_url, 302)]
    assert "newcomer is now developer in Acme." in messages_of(response)
    assert roles(team)["newcomer"] == Role.DEVELOPER
    assert ActivityEntry.objects.get(action="team.member_set").message == "newcomer is developer in Acme"


def test_it_changes_a_role(admin_client, members_url, make_member, team):
    make_member(Role.VIEWER, username="vic")

    admin_client.post(members_url, {"username": "vic", "role": Role.ADMIN})

    assert roles(team)["vic"] == Role.ADMIN


def test_it_removes_a_member(admin_client, members_url, make_member, team):
    make_member(Role.DEVELOPER, username="dev")

    response = admin_client.post(members_url, {"username": "dev", "remove": "1"}, follow=True)

    assert "dev removed from Acme." in messages_of(response)
    assert "dev" not in roles(team)
    assert ActivityEntry.objects.filter(action="team.member_removed").exists()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"username": "nobody", "role": Role.VIEWER}, "There is no user “nobody”."),
        ({"username": "", "role": Role.VIEWER}, "There is no user “”."),
        ({"username": "vic", "role": "owner"}, "Unknown role “owner”: choose viewer, developer or admin."),
        ({"username": "nobody", "remove": "1"}, "nobody is not in Acme."),
    ],
)
def test_it_explains_what_it_cannot_do(admin_client, members_url, make_member, team, data, message):
    make_member(Role.VIEWER, username="vic")
    before = roles(team)

    response = admin_client.post(members_url, data, follow=True)

    assert response.status_code == 200
    assert any(message in m for m in messages_of(response)), messages_of(response)
    assert roles(team) == before


@pytest.mark.parametrize(
    "data",
    [
        {"username": "ada", "role": Role.DEVELOPER},
        {"username": "ada", "role": Role.VIEWER},
        {"username": "ada", "remove": "1"},
    ],
)
def test_it_always_keeps_an_admin(admin_client, members_url, team, data):
    response = admin_client.post(members_url, data, follow=True)

    assert "Acme needs at least one admin: make someone else admin first." in messages_of(response)
    assert roles(team) == {"ada": Role.ADMIN}


def test_it_lets_an_admin_step_down_once_there_is_another(admin_client, members_url, make_member, team):
    make_member(Role.ADMIN, username="bob")

    response = admin_client.post(members_url, {"username": "ada", "role": Role.VIEWER}, follow=True)

    assert response.status_code == 200
    assert roles(team) == {"ada": Role.VIEWER, "bob": Role.ADMIN}
    assert 'name="remove"' not in response.content.decode()  # a viewer now


def test_it_sends_an_admin_who_left_the_team_to_their_projects(admin_client, members_url, make_member, team):
    make_member(Role.ADMIN, username="bob")

    response = admin_client.post(members_url, {"username": "ada", "remove": "1"}, follow=True)

    assert response.redirect_chain[-1] == (reverse("projects"), 302)
    assert response.status_code == 200
    assert "ada removed from Acme." in messages_of(response)
    assert roles(team) == {"bob": Role.ADMIN}


def test_it_answers_htmx_with_a_client_redirect(admin_client, members_url, make_user, team):
    make_user("newcomer")

    response = admin_client.post(members_url, {"username": "newcomer", "role": Role.VIEWER}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert response["HX-Redirect"] == members_url
    assert roles(team)["newcomer"] == Role.VIEWER


def test_it_does_not_let_an_admin_of_one_team_manage_another(client, make_user, make_member, team):
    from deployments.models import Team

    other = Team.objects.create(name="Other", slug="other")
    boss = make_user("boss")
    Membership.objects.create(team=other, user=boss, role=Role.ADMIN)
    make_member(Role.VIEWER, username="vic")
    client.force_login(boss)

    response = client.post(reverse("team_members", args=[team.pk]), {"username": "boss", "role": Role.ADMIN})

    assert response.status_code == 404
    assert "boss" not in roles(team)


def test_it_answers_404_for_a_team_that_does_not_exist(admin_client):
    assert admin_client.get(reverse("team_members", args=[999_999])).status_code == 404
