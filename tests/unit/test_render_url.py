"""postgresql:// URLs: every part percent-encoded, checked with libpq's URI parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from entrypoint.render import url

pytestmark = pytest.mark.unit

TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), min_size=1, max_size=30
)


def test_awkward_password_is_encoded() -> None:
    out = url.render(host="db", port=5432, dbname="app", user="u", password="p@ss:w/rd%#?é")
    assert out == "postgresql://u:p%40ss%3Aw%2Frd%25%23%3F%C3%A9@db:5432/app"


def test_ipv6_host_is_bracketed() -> None:
    assert url.render(host="::1", port=5433, dbname="postgres") == "postgresql://[::1]:5433/postgres"


@given(user=TEXT, password=TEXT, dbname=TEXT)
def test_round_trip_through_libpq(user: str, password: str, dbname: str) -> None:
    parsed = conninfo_to_dict(
        url.render(host="127.0.0.1", port=6432, dbname=dbname, user=user, password=password)
    )
    assert parsed["user"] == user
    assert parsed["password"] == password
    assert parsed["dbname"] == dbname
    assert parsed["port"] == "6432"
