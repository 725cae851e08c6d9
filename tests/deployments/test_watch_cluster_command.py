import pytest
from django.core.management import CommandError, call_command

from deployments.cluster.connection import reset_cluster


@pytest.fixture
def no_cluster(settings, tmp_path, monkeypatch):
    settings.KUBE_API_URL = ""
    settings.KUBECONFIG = str(tmp_path / "missing-kubeconfig")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    reset_cluster()
    yield
    reset_cluster()


def test_it_refuses_to_start_without_a_cluster_and_says_what_to_set(no_cluster, db):
    with pytest.raises(CommandError, match="No Kubernetes cluster is configured: set KUBECONFIG"):
        call_command("watch_cluster")


def test_it_warns_on_every_page_when_no_cluster_is_configured(no_cluster, developer_client):
    page = developer_client.get("/projects/").content.decode()
    assert "No Kubernetes cluster is configured" in page
