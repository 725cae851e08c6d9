import asyncssh
import pytest

from deployments.ssh import hostkey
from deployments.ssh.gateway.models import HostKey


@pytest.mark.django_db
def test_it_generates_one_ed25519_key_and_keeps_it(settings):
    settings.SSH_HOST, settings.SSH_PORT = "ssh.example.com", 22
    first = hostkey.host_key()
    assert first.algorithm == b"ssh-ed25519"
    assert hostkey.host_key().get_fingerprint() == first.get_fingerprint() == hostkey.host_key_fingerprint()
    assert HostKey.objects.count() == 1
    line = hostkey.known_hosts_line()
    host, algorithm, public = line.split()
    assert (host, algorithm) == ("ssh.example.com", "ssh-ed25519")
    assert asyncssh.import_public_key(f"{algorithm} {public}").get_fingerprint() == first.get_fingerprint()


@pytest.mark.django_db
def test_a_non_default_port_is_written_as_known_hosts_wants_it(settings):
    settings.SSH_HOST, settings.SSH_PORT = "localhost", 2222
    assert hostkey.known_hosts_line().startswith("[localhost]:2222 ssh-ed25519 ")
