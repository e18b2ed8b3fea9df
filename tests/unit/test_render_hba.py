"""pg_hba.conf / pg_ident.conf rendering: the rules, and quoting of names."""

from __future__ import annotations

import pytest

from entrypoint.render import hba

pytestmark = pytest.mark.unit


def _rows(text: str) -> list[list[str]]:
    return [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_default_rules_scram_everywhere_peer_only_for_superuser_on_socket() -> None:
    rows = _rows(hba.render_hba(hba.HbaInput(superuser="postgres", cidrs=("10.0.0.0/8",))))
    assert rows[0] == ["local", "all", "postgres", "peer", "map=aza-local"]
    assert rows[1] == ["local", "all", "all", "scram-sha-256"]
    assert ["host", "all", "all", "127.0.0.1/32", "scram-sha-256"] in rows
    assert ["host", "all", "all", "::1/128", "scram-sha-256"] in rows
    assert ["host", "all", "all", "10.0.0.0/8", "scram-sha-256"] in rows
    assert not [r for r in rows if "replication" in r]
    assert not [r for r in rows if r[-1] in ("trust", "md5", "password")]


def test_replication_lines_for_loopback_and_each_network() -> None:
    spec = hba.HbaInput(
        superuser="postgres", cidrs=("10.0.0.0/8", "192.168.0.0/16"), replication_user="replicator"
    )
    rows = _rows(hba.render_hba(spec))
    repl = [r for r in rows if r[0] == "host" and r[1] == "replication"]
    assert [r[3] for r in repl] == ["127.0.0.1/32", "::1/128", "10.0.0.0/8", "192.168.0.0/16"]
    assert all(r[2] == "replicator" and r[4] == "scram-sha-256" for r in repl)


def test_trust_applies_to_every_line_and_hostssl_to_networks_only() -> None:
    rows = _rows(
        hba.render_hba(
            hba.HbaInput(
                superuser="postgres", auth_method="trust", cidrs=("10.0.0.0/8",), network_type="hostssl"
            )
        )
    )
    assert all(r[-1] == "trust" for r in rows)
    assert ["hostssl", "all", "all", "10.0.0.0/8", "trust"] in rows
    assert ["host", "all", "all", "127.0.0.1/32", "trust"] in rows


def test_names_that_look_like_keywords_or_have_specials_are_quoted() -> None:
    assert hba.token("all") == '"all"'
    assert hba.token("replication") == '"replication"'
    assert hba.token('we"ird') == '"we""ird"'
    assert hba.token("+group") == '"+group"'
    assert hba.token("app-user.1") == "app-user.1"
    with pytest.raises(ValueError, match="line breaks"):
        hba.token("a\nb")


def test_ident_maps_each_os_user_once_to_the_superuser() -> None:
    text = hba.render_ident("admin", ["root", "postgres", "postgres"])
    rows = _rows(text)
    assert rows == [["aza-local", "root", "admin"], ["aza-local", "postgres", "admin"]]
