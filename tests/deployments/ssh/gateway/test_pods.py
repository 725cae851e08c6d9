import pytest

from deployments.ssh.gateway.pods import NoPod, choose


def pod(name: str, *, ready: bool = True, phase: str = "Running", deleting: bool = False) -> dict:
    metadata = {"name": name, **({"deletionTimestamp": "2026-12-02T10:00:00Z"} if deleting else {})}
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"metadata": metadata, "status": {"phase": phase, "conditions": conditions}}


def test_it_enters_the_first_ready_pod_by_name():
    choice = choose([pod("web-c"), pod("web-b", ready=False), pod("web-a")], component="web", replica=None)
    assert (choice.pod, choice.ready) == ("web-a", ("web-a", "web-c"))


@pytest.mark.parametrize("replica", ["web-7f9-b", "b"])
def test_it_enters_the_replica_the_user_named(replica):
    choice = choose([pod("web-7f9-a"), pod("web-7f9-b")], component="web", replica=replica)
    assert choice.pod == "web-7f9-b"


def test_a_stateful_sets_ordinal_names_its_pod():
    choice = choose([pod("db-0"), pod("db-1"), pod("db-2")], component="db", replica="1")
    assert choice.pod == "db-1"


def test_a_named_replica_that_is_not_ready_is_refused_with_the_ready_ones():
    with pytest.raises(NoPod, match=r"web has no ready replica 'c'; ready: a \(web-a\), b \(web-b\)"):
        choose([pod("web-a"), pod("web-b"), pod("web-c", ready=False)], component="web", replica="c")


def test_pods_starting_or_going_away_are_not_entered():
    pods = [pod("web-a", phase="Pending", ready=False), pod("web-b", deleting=True)]
    with pytest.raises(NoPod, match=r"no pod of web is ready \(2 starting\)"):
        choose(pods, component="web", replica=None)
    with pytest.raises(NoPod, match=r"^no pod of web is ready; "):
        choose([], component="web", replica=None)
