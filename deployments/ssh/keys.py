"""Reading a public key a user pastes: one OpenSSH ``authorized_keys`` line, parsed by asyncssh.

Accepted: ed25519, ecdsa (nistp256/384/521) and rsa of at least 2048 bits.
Everything else is refused with a message saying what to do instead.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import asyncssh

MIN_RSA_BITS = 2048
ACCEPTED_TYPES = {
    "ssh-ed25519": "ed25519",
    "ecdsa-sha2-nistp256": "ecdsa",
    "ecdsa-sha2-nistp384": "ecdsa",
    "ecdsa-sha2-nistp521": "ecdsa",
    "ssh-rsa": "rsa",
}
_HINT = "add an ed25519 key instead (ssh-keygen -t ed25519)"


class KeyRefused(ValueError):
    """The text is not a public key Diploi accepts; the message says why, for the user."""


@dataclass(frozen=True)
class PublicKey:
    key_type: str  # "ed25519", "ecdsa" or "rsa"
    algorithm: str  # "ssh-ed25519", "ecdsa-sha2-nistp256", ...
    bits: int
    public_key: str  # "algorithm base64": what authorized_keys holds, without options or comment
    fingerprint: str  # "SHA256:…"
    comment: str


def _refuse_type(word: str) -> None:
    if word == "ssh-dss":
        raise KeyRefused(f"DSA keys are not accepted (they are insecure, and OpenSSH has dropped them): {_HINT}.")
    if word.startswith("sk-"):
        raise KeyRefused(f"security-key (FIDO, {word}) keys are not accepted yet: {_HINT}.")
    if "-cert-" in word:
        raise KeyRefused("SSH certificates are not accepted: give the plain public key (the .pub file).")
    raise KeyRefused(f"“{word[:40]}” is not a key type Diploi accepts (ed25519, ecdsa, or rsa of 2048 bits or more).")


def _looks_like_a_type(word: str) -> bool:
    return word in ACCEPTED_TYPES or word == "ssh-dss" or word.startswith(("sk-", "ssh-", "ecdsa-"))


def parse_public_key(text: str) -> PublicKey:
    """Parse one ``authorized_keys`` line (``type base64 [comment]``); raise `KeyRefused` saying why not.

    Pure: no database. Options before the type (``from=``, ``command=``...) are refused,
    because the gateway would not honour them.
    """
    if "PRIVATE KEY" in text:
        raise KeyRefused("this is a private key: never share it. Paste the public key (the .pub file) instead.")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        raise KeyRefused("paste a public key: one line such as “ssh-ed25519 AAAA… you@laptop” (your .pub file).")
    if len(lines) > 1:
        raise KeyRefused(f"give one key at a time (this text has {len(lines)} lines).")
    words = lines[0].split()
    if not _looks_like_a_type(words[0]):
        if any(word in ACCEPTED_TYPES for word in words[1:]):
            raise KeyRefused(
                "options before the key type (such as from=, command= or no-pty) are not supported: "
                "give just “type key [comment]”."
            )
        raise KeyRefused(
            "this is not an OpenSSH public key: it should start with ssh-ed25519, ecdsa-sha2-… or ssh-rsa "
            "(the contents of your .pub file)."
        )
    algorithm = words[0]
    if algorithm not in ACCEPTED_TYPES:
        _refuse_type(algorithm)
    if len(words) < 2:
        raise KeyRefused(f"the {algorithm} key has no key data after its type: paste the whole line.")
    try:
        key = asyncssh.import_public_key(f"{algorithm} {words[1]}")
    except (asyncssh.KeyImportError, ValueError):
        raise KeyRefused(f"the {algorithm} key data is damaged or cut short: paste the whole line again.") from None
    bits = _bits(key)
    key_type = ACCEPTED_TYPES[algorithm]
    if key_type == "rsa" and bits < MIN_RSA_BITS:
        raise KeyRefused(f"this RSA key has {bits} bits; at least {MIN_RSA_BITS} are needed: {_HINT}.")
    return PublicKey(
        key_type=key_type,
        algorithm=algorithm,
        bits=bits,
        public_key=f"{algorithm} {base64.b64encode(key.public_data).decode()}",
        fingerprint=key.get_fingerprint("sha256"),
        comment=" ".join(words[2:]),
    )


def _bits(key: asyncssh.SSHKey) -> int:
    size = getattr(key.pyca_key, "key_size", None)
    if size:
        return int(size)
    return 256  # ed25519: cryptography's Ed25519PublicKey has no key_size


def fingerprint_of(public_key: str) -> str | None:
    """The SHA256 fingerprint of an OpenSSH public key (``type base64[ comment]``), or None if unreadable."""
    try:
        return asyncssh.import_public_key(public_key.strip()).get_fingerprint("sha256")
    except (asyncssh.KeyImportError, ValueError):
        return None
