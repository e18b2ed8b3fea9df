"""The .pgpass escaper, checked against a reader that follows libpq's own parsing rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrypoint.render import pgpass

pytestmark = pytest.mark.unit


def libpq_read(line: str) -> tuple[list[str], str]:
    """Split one line the way libpq does: 4 match fields, then the password.

    In a field ``\\`` takes the next character literally and an unescaped ``:`` ends the field; the
    password also ends at an unescaped ``:`` (libpq's de-escaping loop stops there).
    """
    fields: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            current.append(line[i + 1])
            i += 2
            continue
        if ch == ":":
            fields.append("".join(current))
            current = []
            if len(fields) == 4:
                break
            i += 1
            continue
        current.append(ch)
        i += 1
    if len(fields) < 4:
        raise ValueError(f"not a .pgpass line: {line!r}")
    password: list[str] = []
    j = i + 1
    while j < len(line) and line[j] != ":":
        if line[j] == "\\" and j + 1 < len(line):
            j += 1
        password.append(line[j])
        j += 1
    return fields, "".join(password)


def test_only_backslash_and_colon_are_escaped() -> None:
    assert pgpass.escape(r"a:b\c") == r"a\:b\\c"
    assert pgpass.escape("' \"#@&$% é*") == "' \"#@&$% é*"


def test_line_uses_wildcards_for_unset_fields() -> None:
    entry = pgpass.Entry(host="db", port=5432, user="pgbouncer_auth", password="p:w")
    assert pgpass.line(entry) == r"db:5432:*:pgbouncer_auth:p\:w"


def test_render_ends_every_entry_with_a_newline() -> None:
    text = pgpass.render([pgpass.Entry(password="a"), pgpass.Entry(password="b", host="h")])
    assert text == "*:*:*:*:a\nh:*:*:*:b\n"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_line_breaks_and_nul_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="line breaks"):
        pgpass.escape(bad)


def test_a_literal_star_cannot_be_a_match_field() -> None:
    with pytest.raises(ValueError, match="wildcard"):
        pgpass.line(pgpass.Entry(password="x", user="*"))


def test_a_star_password_is_fine() -> None:
    assert pgpass.line(pgpass.Entry(password="*")).endswith(":*")


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\0"),
    min_size=1,
    max_size=60,
)
_special = st.text(alphabet=":\\'\" #@&$%*", min_size=1, max_size=20)
_value = st.one_of(_text, _special, st.builds(lambda a, b: a + b, _special, _text))


@settings(max_examples=500)
@given(host=_value.filter(lambda v: v != "*"), user=_value.filter(lambda v: v != "*"), password=_value)
def test_round_trip_through_the_libpq_reader(host: str, user: str, password: str) -> None:
    rendered = pgpass.render([pgpass.Entry(host=host, port=6432, user=user, password=password)])
    assert rendered.count("\n") == 1
    fields, parsed = libpq_read(rendered.rstrip("\n"))
    assert fields == [host, "6432", "*", user]
    assert parsed == password


@given(password=_value)
def test_an_unescaped_colon_never_survives(password: str) -> None:
    escaped = pgpass.escape(password)
    # every ':' in the output is preceded by an odd number of backslashes
    for index, ch in enumerate(escaped):
        if ch == ":":
            run = len(escaped[:index]) - len(escaped[:index].rstrip("\\"))
            assert run % 2 == 1
