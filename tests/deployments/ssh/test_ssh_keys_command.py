"""`manage.py ssh_keys add|list|remove` for operators."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from deployments.models import ActivityEntry
from deployments.ssh.models import SSHKey
from tests.deployments.ssh.conftest import public_line

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("ssh_keys", *args, stdout=out)
    return out.getvalue()


def test_it_adds_lists_and_removes_a_key_from_a_file(make_user, make_key, tmp_path):
    alice = make_user("alice")
    key = make_key()
    path = tmp_path / "id.pub"
    path.write_text(public_line(key, "alice@box") + "\n")
    fingerprint = key.get_fingerprint("sha256")

    assert run("add", "--user", "alice", "--key-file", str(path)) == (
        f"Added “alice@box” for alice: ed25519 256 {fingerprint}\n"
    )
    listed = run("list", "--user", "alice")
    assert listed.startswith(f"alice\t{fingerprint}\ted25519 256\talice@box\tadded ") and "last used never" in listed
    assert run("remove", "--user", "alice", fingerprint) == f"Removed {fingerprint} of alice.\n"
    assert not SSHKey.objects.filter(user=alice).exists()
    assert list(ActivityEntry.objects.order_by("pk").values_list("action", flat=True)) == [
        "ssh_key.added",
        "ssh_key.removed",
    ]


def test_it_reads_stdin_for_dash(make_user, make_key, monkeypatch):
    make_user("bob")
    monkeypatch.setattr("sys.stdin", io.StringIO(public_line(make_key("ecdsa-sha2-nistp256"))))
    assert "ecdsa 256" in run("add", "--user", "bob", "--key-file", "-", "--name", "desk")
    assert SSHKey.objects.get(user__username="bob").name == "desk"


def test_list_without_a_user_lists_everyone(make_user, make_key, tmp_path):
    for name in ("carol", "dave"):
        make_user(name)
        (tmp_path / name).write_text(public_line(make_key()))
        run("add", "--user", name, "--key-file", str(tmp_path / name))
    assert [line.split("\t")[0] for line in run("list").splitlines()] == ["carol", "dave"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "--user", "nobody", "--key-file", "-"), "There is no user “nobody”."),
        (("add", "--user", "erin", "--key-file", "/nonexistent/id.pub"), "Cannot read /nonexistent/id.pub"),
        (("remove", "--user", "erin", "SHA256:nothing"), "erin has no SSH key SHA256:nothing."),
        (("list", "--user", "nobody"), "There is no user “nobody”."),
    ],
)
def test_it_says_clearly_what_is_wrong(make_user, args, message):
    make_user("erin")
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_a_refused_key_says_why(make_user, make_key, tmp_path):
    make_user("frank")
    path = tmp_path / "dsa.pub"
    path.write_text(public_line(make_key("ssh-dss")))
    with pytest.raises(CommandError, match="DSA keys are not accepted"):
        run("add", "--user", "frank", "--key-file", str(path))
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(CommandError, match="is not text"):
        run("add", "--user", "frank", "--key-file", str(path))
