import pytest
from django.test import Client

from deployments.models import Role
from tests.deployments.builds.conftest import repository  # noqa: F401 - a real Git repository on disk


@pytest.fixture
def project(make_project):
    return make_project("django-postgres", slug="shop")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_member(make_member):
    return make_member(Role.ADMIN)


@pytest.fixture
def admin_client(admin_member):
    return _client(admin_member)


@pytest.fixture
def viewer_client(make_member):
    return _client(make_member(Role.VIEWER))


@pytest.fixture
def team_developer_client(make_member):
    return _client(make_member(Role.DEVELOPER))


@pytest.fixture(autouse=True)
def _registry(settings):
    settings.REGISTRY = "registry.example.com/diploi"


@pytest.fixture
def external_project(make_project, repository, admin_member):  # noqa: F811 - the fixture imported above
    """A Django project whose builds an external CI reports, on a local Git repository."""
    from deployments.ci.services import project_build_runner_set

    project = make_project("django-postgres", slug="shop")
    project.repository = repository.url
    project.save(update_fields=["repository"])
    return project_build_runner_set(project=project, runner="external", actor=admin_member)


@pytest.fixture
def ssh_git_server(tmp_path):
    from tests.deployments.ci.sshgit import SshGitServer

    (tmp_path / "sshd").mkdir()
    server = SshGitServer(tmp_path / "sshd").start()
    yield server
    server.stop()


@pytest.fixture
def http_git_server(tmp_path):
    from tests.deployments.ci.httpgit import HttpGitServer

    (tmp_path / "http").mkdir()
    server = HttpGitServer(tmp_path / "http", username="x-access-token", token="ghp_privateTokenValue42").start()
    yield server
    server.stop()
