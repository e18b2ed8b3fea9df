"""The postgresql.conf escaper, checked against a reader that follows PostgreSQL's guc-file lexer."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrypoint.render import conf

pytestmark = pytest.mark.unit

_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def read_value(text: str) -> str:
    """What PostgreSQL's lexer makes of one value: a bare token, or a quoted string de-escaped."""
    if not text.startswith("'"):
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+", text), text
        return text
    assert re.fullmatch(r"'([^'\\\n]|\\.|'')*'", text, re.DOTALL), text
    body = text[1:-1]
    out = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            nxt = body[i + 1]
            if nxt in "01234567":
                digits = re.match(r"[0-7]{1,3}", body[i + 1 :])
                assert digits is not None
                out.append(chr(int(digits.group(), 8)))
                i += 1 + len(digits.group())
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
        elif char == "'":
            assert body[i + 1] == "'"
            out.append("'")
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


@pytest.mark.parametrize(
    ("raw", "written"),
    [
        ("512MB", "512MB"),
        ("0.9", "0.9"),
        ("on", "on"),
        ("-1", "-1"),
        ("pg_stat_statements,auto_explain", "'pg_stat_statements,auto_explain'"),
        ("it's", "'it''s'"),
        ("C:\\path", "'C:\\\\path'"),
        ("a\nb", "'a\\nb'"),
        ("", "''"),
        ("%m [%p] ", "'%m [%p] '"),
    ],
)
def test_values(raw: str, written: str) -> None:
    assert conf.value(raw) == written
    assert read_value(written) == raw


@given(st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",))))
def test_any_text_round_trips(raw: str) -> None:
    assert read_value(conf.value(raw)) == raw


def test_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        conf.quote("a\0b")


@pytest.mark.parametrize("name", ["", "1abc", "work mem", "x=1", "a\nb", "shared_buffers;"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="setting name"):
        conf.line(name, "1")


def test_render_fragment() -> None:
    text = conf.render(
        {"shared_buffers": "512MB", "pg_stat_statements.track": "all", "search_path": '"$user", public'},
        header=["Generated", ""],
    )
    assert text == (
        "# Generated\n#\nshared_buffers = 512MB\npg_stat_statements.track = all\n"
        "search_path = '\"$user\", public'\n"
    )


def test_header_line_breaks_are_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        conf.render({}, header=["a\nshared_buffers = 1"])
