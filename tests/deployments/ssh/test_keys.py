"""Parsing pasted public keys (pure)."""

from __future__ import annotations

import pytest

from deployments.ssh.keys import KeyRefused, parse_public_key
from tests.deployments.ssh.conftest import public_line


@pytest.mark.parametrize(
    ("algorithm", "options", "key_type", "bits"),
    [
        ("ssh-ed25519", {}, "ed25519", 256),
        ("ecdsa-sha2-nistp256", {}, "ecdsa", 256),
        ("ecdsa-sha2-nistp384", {}, "ecdsa", 384),
        ("ecdsa-sha2-nistp521", {}, "ecdsa", 521),
        ("ssh-rsa", {"key_size": 2048}, "rsa", 2048),
        ("ssh-rsa", {"key_size": 3072}, "rsa", 3072),
    ],
)
def test_it_accepts_ed25519_ecdsa_and_rsa_of_2048_bits_or_more(make_key, algorithm, options, key_type, bits):
    key = make_key(algorithm, **options)
    parsed = parse_public_key(public_line(key, "alice@laptop") + "\n")
    assert (parsed.key_type, parsed.algorithm, parsed.bits) == (key_type, algorithm, bits)
    assert parsed.fingerprint == key.get_fingerprint("sha256")
    assert parsed.fingerprint.startswith("SHA256:")
    assert parsed.comment == "alice@laptop"
    assert parsed.public_key == public_line(key, "").strip()


def test_it_refuses_small_rsa_keys(make_key):
    with pytest.raises(KeyRefused, match="1024 bits; at least 2048"):
        parse_public_key(public_line(make_key("ssh-rsa", key_size=1024)))


def test_it_refuses_dsa_keys(make_key):
    with pytest.raises(KeyRefused, match="DSA keys are not accepted"):
        parse_public_key(public_line(make_key("ssh-dss")))


def test_it_refuses_a_private_key(make_key):
    with pytest.raises(KeyRefused, match="private key"):
        parse_public_key(make_key().export_private_key("openssh").decode())


def test_it_refuses_options_before_the_type(make_key):
    with pytest.raises(KeyRefused, match="options before the key type"):
        parse_public_key('no-pty,command="ls" ' + public_line(make_key()))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "paste a public key"),
        ("   \n", "paste a public key"),
        ("hello world", "not an OpenSSH public key"),
        ("ssh-ed25519", "no key data"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH5K", "damaged or cut short"),
        ("ssh-ed25519 !!!notbase64!!!", "damaged or cut short"),
        ("sk-ssh-ed25519@openssh.com AAAA", "security-key"),
        ("ssh-ed25519-cert-v01@openssh.com AAAA", "certificates are not accepted"),
        ("ssh-xyz AAAA", "not a key type Diploi accepts"),
    ],
)
def test_it_refuses_what_is_not_a_key_saying_why(text, message):
    with pytest.raises(KeyRefused, match=message):
        parse_public_key(text)


def test_it_refuses_a_line_whose_type_lies_about_its_data(make_key):
    data = public_line(make_key("ecdsa-sha2-nistp256")).split()[1]
    with pytest.raises(KeyRefused, match="the ssh-ed25519 key data is damaged"):
        parse_public_key(f"ssh-ed25519 {data}")


def test_it_takes_one_key_at_a_time(make_key):
    with pytest.raises(KeyRefused, match="one key at a time"):
        parse_public_key(public_line(make_key()) + "\n" + public_line(make_key()))
