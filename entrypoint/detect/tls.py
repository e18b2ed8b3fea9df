"""Read and check the TLS files the user mounted (POSTGRES_SSL=on), before anything on disk changes.

Every problem is one ConfigError line naming the variable, the path and what is expected, so a bad mount
stops the container with a clear message instead of a PostgreSQL start failure later.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from entrypoint.errors import ConfigError
from entrypoint.tls import TlsSettings

MAX_BYTES = 1 << 20
_HINT = "mount a directory made by scripts/tools/generate-ssl-certs.sh at /etc/postgresql/certs (read-only)"


@dataclass(frozen=True)
class TlsMaterial:
    cert: bytes
    key: bytes
    ca: bytes | None
    key_source_mode: int  # permission bits of the mounted key, for a warning about a too-open file


def _read(variable: str, path: str, what: str) -> tuple[bytes, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(
            f"POSTGRES_SSL=on but {variable}={path}: the {what} does not exist ({_HINT})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{variable}={path}: cannot read the {what} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{variable}={path}: the {what} is not a regular file")
    if st.st_size > MAX_BYTES:
        raise ConfigError(f"{variable}={path}: the {what} is larger than 1 MiB; is it the right file?")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{variable}={path}: cannot read the {what} ({exc.strerror or exc})") from None
    return data, stat.S_IMODE(st.st_mode)


def read_material(settings: TlsSettings) -> TlsMaterial | None:
    """Certificate, key and CA bytes when TLS is on (None when off), checked to be PEM of the right kind."""
    if not settings.enabled:
        return None
    cert, _ = _read("POSTGRES_SSL_CERT_FILE", settings.cert_file, "server certificate")
    if b"-----BEGIN CERTIFICATE-----" not in cert:
        raise ConfigError(
            f"POSTGRES_SSL_CERT_FILE={settings.cert_file}: not a PEM certificate (no BEGIN CERTIFICATE line)"
        )
    key, key_mode = _read("POSTGRES_SSL_KEY_FILE", settings.key_file, "server private key")
    if b"PRIVATE KEY-----" not in key:
        raise ConfigError(f"POSTGRES_SSL_KEY_FILE={settings.key_file}: not a PEM private key")
    if b"ENCRYPTED" in key:
        raise ConfigError(
            f"POSTGRES_SSL_KEY_FILE={settings.key_file}: the key is protected by a passphrase, which "
            "the server cannot enter at start; use an unencrypted key (mode 0600)"
        )
    ca: bytes | None = None
    if settings.ca_file is not None:
        ca, _ = _read("POSTGRES_SSL_CA_FILE", settings.ca_file, "CA certificate")
        if b"-----BEGIN CERTIFICATE-----" not in ca:
            raise ConfigError(f"POSTGRES_SSL_CA_FILE={settings.ca_file}: not a PEM certificate")
    return TlsMaterial(cert=cert, key=key, ca=ca, key_source_mode=key_mode)
