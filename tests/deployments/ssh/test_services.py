"""Adding and removing keys: one key, one user; clear errors; audit rows."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from deployments.models import ActivityEntry
from deployments.ssh.models import SSHKey
from deployments.ssh.services import ssh_key_add, ssh_key_remove
from tests.deployments.ssh.conftest import public_line

pytestmark = pytest.mark.django_db


def test_it_adds_a_key_with_its_fingerprint_and_an_audit_row(developer, make_key):
    key = make_key()
    added = ssh_key_add(user=developer, name="laptop", public_key=public_line(key), actor=developer)
    assert (added.user, added.name, added.key_type, added.bits) == (developer, "laptop", "ed25519", 256)
    assert added.fingerprint == key.get_fingerprint("sha256")
    assert added.public_key == public_line(key, "").strip()
    entry = ActivityEntry.objects.get(action="ssh_key.added")
    assert entry.actor == developer and added.fingerprint in entry.message


def test_the_comment_names_the_key_when_no_name_is_given(developer, make_key):
    added = ssh_key_add(user=developer, name=" ", public_key=public_line(make_key(), "me@desk"), actor=developer)
    assert added.name == "me@desk"


def test_one_key_belongs_to_one_user(developer, make_user, make_key):
    line = public_line(make_key())
    ssh_key_add(user=developer, name="laptop", public_key=line, actor=developer)
    with pytest.raises(ValidationError) as refused:
        ssh_key_add(user=make_user(), name="mine", public_key=line, actor=developer)
    assert "is already registered" in refused.value.message_dict["public_key"][0]
    assert SSHKey.objects.count() == 1


def test_bad_input_is_refused_per_field_and_nothing_is_written(developer, make_key):
    ssh_key_add(user=developer, name="laptop", public_key=public_line(make_key()), actor=developer)
    with pytest.raises(ValidationError) as refused:
        ssh_key_add(user=developer, name="laptop", public_key="ssh-dss AAAA", actor=developer)
    assert refused.value.message_dict == {
        "name": [f"{developer.username} already has a key called “laptop”."],
        "public_key": [
            "DSA keys are not accepted (they are insecure, and OpenSSH has dropped them): "
            "add an ed25519 key instead (ssh-keygen -t ed25519)."
        ],
    }
    with pytest.raises(ValidationError) as refused:
        ssh_key_add(user=developer, name="x" * 101, public_key=public_line(make_key()), actor=developer)
    assert refused.value.message_dict["name"] == ["Keep the name to 100 characters (it has 101)."]
    assert SSHKey.objects.count() == 1


def test_it_removes_a_key_of_that_user_only(developer, make_user, make_key):
    added = ssh_key_add(user=developer, name="laptop", public_key=public_line(make_key()), actor=developer)
    with pytest.raises(ValidationError, match="has no SSH key"):
        ssh_key_remove(user=make_user(), fingerprint=added.fingerprint, actor=developer)
    ssh_key_remove(user=developer, fingerprint=added.fingerprint, actor=developer)
    assert not SSHKey.objects.exists()
    assert ActivityEntry.objects.filter(action="ssh_key.removed").count() == 1
    with pytest.raises(ValidationError, match="has no SSH key"):
        ssh_key_remove(user=developer, fingerprint=added.fingerprint, actor=developer)
