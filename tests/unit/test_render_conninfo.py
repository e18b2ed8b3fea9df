"""libpq conninfo escaping, checked against libpq's own parser (psycopg.conninfo uses PQconninfoParse)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from entrypoint.render import conninfo

pytestmark = pytest.mark.unit

TEXT = st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=40)


def test_quote_escapes_backslash_and_quote_only() -> None:
    assert conninfo.quote("a'b\\c d=e") == "'a\\'b\\\\c d=e'"
    assert conninfo.quote("") == "''"


@given(password=TEXT, user=TEXT, app=TEXT)
def test_round_trip_through_libpq(password: str, user: str, app: str) -> None:
    text = conninfo.render(
        {"host": "127.0.0.1", "port": "5432", "user": user, "password": password, "application_name": app}
    )
    parsed = conninfo_to_dict(text)
    assert parsed["password"] == password
    assert parsed["user"] == user
    assert parsed["application_name"] == app
    assert parsed["host"] == "127.0.0.1"


def test_rejects_nul_and_bad_keywords() -> None:
    with pytest.raises(ValueError, match="NUL"):
        conninfo.quote("a\0b")
    with pytest.raises(ValueError, match="keyword"):
        conninfo.render({"pass word": "x"})
