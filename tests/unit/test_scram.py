"""Client-side SCRAM-SHA-256 verifiers: RFC 7677's test vector, SASLprep, fingerprints."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from entrypoint import scram

pytestmark = pytest.mark.unit

RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
AUTH_MESSAGE = (
    "n=user,r=rOprNGfwEbeRWgbNEkqO,"
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
)


def _parts(verifier: str) -> tuple[int, bytes, bytes, bytes]:
    method, rest = verifier.split("$", 1)
    assert method == "SCRAM-SHA-256"
    iter_salt, keys = rest.split("$")
    iterations, salt = iter_salt.split(":")
    stored, server = keys.split(":")
    return int(iterations), base64.b64decode(salt), base64.b64decode(stored), base64.b64decode(server)


def test_rfc7677_vector_server_signature() -> None:
    verifier = scram.scram_verifier("pencil", salt=RFC_SALT)
    iterations, salt, _stored, server_key = _parts(verifier)
    assert iterations == 4096
    assert salt == RFC_SALT
    signature = hmac.new(server_key, AUTH_MESSAGE.encode(), hashlib.sha256).digest()
    assert base64.b64encode(signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_random_salt_differs_each_time() -> None:
    assert scram.scram_verifier("x") != scram.scram_verifier("x")


def test_saslprep_maps_non_ascii_space_and_normalises() -> None:
    salt = b"0123456789abcdef"
    assert scram.scram_verifier("a\u00a0b", salt=salt) == scram.scram_verifier("a b", salt=salt)
    # NFKC: the ligature "ﬁ" becomes "fi"
    assert scram.scram_verifier("\ufb01x", salt=salt) == scram.scram_verifier("fix", salt=salt)
    # ASCII passwords are used as is (no normalisation at all)
    assert scram.scram_verifier("A  b", salt=salt) != scram.scram_verifier("A b", salt=salt)


def test_prohibited_characters_fall_back_to_raw_bytes() -> None:
    salt = b"0123456789abcdef"
    raw = "é\u0007"  # a control character is prohibited: PostgreSQL then uses the raw bytes
    salted = hashlib.pbkdf2_hmac("sha256", raw.encode(), salt, 4096)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    assert _parts(scram.scram_verifier(raw, salt=salt))[2] == stored


def test_fingerprint_depends_on_salt_and_password_and_hides_it() -> None:
    a = scram.secret_fingerprint("secret", b"salt1")
    assert a == scram.secret_fingerprint("secret", b"salt1")
    assert a != scram.secret_fingerprint("secret", b"salt2")
    assert a != scram.secret_fingerprint("secret2", b"salt1")
    assert "secret" not in a
