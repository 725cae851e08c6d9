from deployments.models import Membership, Role, Team


def test_it_sends_anonymous_visitors_to_sign_in(client, db):
    response = client.get("/projects/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_shows_an_empty_dashboard_to_a_new_member(developer_client):
    response = developer_client.get("/projects/")
    assert response.status_code == 200
    assert b"No projects yet" in response.content
    assert b'ws-connect="/ws/teams/' in response.content


def test_it_tells_someone_without_a_team_how_to_get_one(client, make_user):
    client.force_login(make_user())
    response = client.get("/projects/")
    assert b"You are not in a team yet" in response.content


def test_it_switches_only_to_teams_the_user_belongs_to(client, make_member, team):
    user = make_member(Role.VIEWER)
    other = Team.objects.create(name="Beta", slug="beta")
    stranger_team = Team.objects.create(name="Zeta", slug="zeta")
    Membership.objects.create(team=other, user=user, role=Role.ADMIN)
    client.force_login(user)

    client.post("/teams/switch/", {"team": other.pk})
    assert b'Projects <span class="muted">\xc2\xb7 Beta' in client.get("/projects/").content

    client.post("/teams/switch/", {"team": stranger_team.pk})
    assert b"Zeta" not in client.get("/projects/").content


def test_it_answers_health_checks(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"


def test_it_serves_the_login_page(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Sign in to Diploi" in response.content
