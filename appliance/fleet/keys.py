"""Device keys and operator passwords: the scheme that makes one lookup need one slow verify.

A device key is `fk1.<key id>.<secret>`: the key id (16 hex characters, random, not secret) is
stored in clear and indexed; the secret (32 random bytes, URL-safe base64) is stored only as an
argon2id hash. A token request finds the device row by key id (one indexed lookup) and verifies
the secret against that one hash, so a request costs at most one argon2 verification whatever
the fleet's size, and an unknown key id costs none.

argon2 is deliberately slow (about 10-20 ms here with the parameters below, OWASP's minimum for
argon2id). A fleet that comes back after an outage would spend that on every request, so each
service instance remembers, in memory, the SHA-256 of secrets it has already verified against a
given hash (`VerifiedCache`); a repeat request costs one SHA-256. The cache never decides
anything the database did not: revocation and the room are read from the row on every request,
and a re-keyed device has a new hash, so an old entry can never match.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

KEY_VERSION = "fk1"
_KEY = re.compile(r"^fk1\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")

# argon2id, OWASP's minimum recommendation (19 MiB, 2 passes, 1 lane): the secrets are random,
# the hash only has to make a stolen database useless, and every token request pays it once.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def new_device_key() -> tuple[str, str]:
    """A fresh (key id, full device key)."""
    key_id = secrets.token_hex(8)
    return key_id, f"{KEY_VERSION}.{key_id}.{secrets.token_urlsafe(32)}"


def import_row(identity: str, room: str, *, display_name: str = "",
               profile: str = "") -> tuple[str, dict[str, str]]:
    """A fresh device key and its row for `appliance fleet import` (key id and hash, never the key).

    `appliance fleet keygen` and `appliance provision --enrol-file` both make keys here.
    """
    key_id, key = new_device_key()
    row = {"identity": identity, "room": room, "display_name": display_name,
           "profile": profile, "key_id": key_id, "key_hash": hash_secret(key.split(".", 2)[2])}
    return key, row


def split_key(key: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed device key, else None."""
    m = _KEY.match(key.strip())
    return (m.group(1), m.group(2)) if m else None


def hash_secret(secret: str) -> str:
    return HASHER.hash(secret)


def verify_secret(hashed: str, secret: str) -> bool:
    try:
        return HASHER.verify(hashed, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class VerifiedCache:
    """(key id, stored hash) -> SHA-256 of the secret that verified against it; bounded LRU."""

    def __init__(self, size: int = 100_000) -> None:
        self._size = size
        self._seen: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def known(self, key_id: str, hashed: str, secret: str) -> bool:
        digest = self._seen.get((key_id, hashed))
        if digest is None:
            return False
        self._seen.move_to_end((key_id, hashed))
        return hmac.compare_digest(digest, hashlib.sha256(secret.encode()).digest())

    def remember(self, key_id: str, hashed: str, secret: str) -> None:
        self._seen[(key_id, hashed)] = hashlib.sha256(secret.encode()).digest()
        self._seen.move_to_end((key_id, hashed))
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)
