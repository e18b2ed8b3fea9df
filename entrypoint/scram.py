"""Client-side SCRAM-SHA-256 verifiers and password fingerprints (pure, no psycopg: cheap to import).

Passwords never reach the server in clear text: :func:`scram_verifier` computes the
``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` string PostgreSQL stores, and the server
stores a string of that shape as is. So neither initdb's password file, nor single-user mode's stdin,
nor a server log line with a failed statement ever holds a password.

The password is normalised with SASLprep (RFC 4013) as PostgreSQL and libpq do: an ASCII password is
used as is; otherwise mapped, NFKC-normalised and checked, and on any failure the raw UTF-8 bytes are
used (PostgreSQL's documented fallback).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

SCRAM_ITERATIONS = 4096


def _saslprep(password: str) -> bytes:
    raw = password.encode("utf-8")
    if password.isascii():
        return raw
    import stringprep  # only for non-ASCII passwords, and always before the privilege drop
    import unicodedata

    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in password if not stringprep.in_table_b1(ch)
    )
    text = unicodedata.normalize("NFKC", mapped)
    if not text:
        return raw
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21,
        stringprep.in_table_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,
    )
    for ch in text:
        if any(check(ch) for check in prohibited):
            return raw
    has_ral = any(stringprep.in_table_d1(ch) for ch in text)
    if has_ral:
        if any(stringprep.in_table_d2(ch) for ch in text):
            return raw
        if not (stringprep.in_table_d1(text[0]) and stringprep.in_table_d1(text[-1])):
            return raw
    return text.encode("utf-8")


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL would store for ``password`` (random 16-byte salt)."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def secret_fingerprint(password: str, salt: bytes) -> str:
    """What the state file records to notice a changed password: HMAC-SHA256 with a per-cluster salt."""
    return hmac.new(salt, password.encode("utf-8"), hashlib.sha256).hexdigest()
