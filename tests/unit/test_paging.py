from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response

from nimbus.api.http import link_next_page
from nimbus.domain.errors import InvalidInput
from nimbus.domain.paging import decode_cursor, encode_cursor
from nimbus.security import sigv4


def test_a_cursor_round_trips_its_position() -> None:
    cursor = encode_cursor({"uid": "0190-abc", "n": "3"})
    assert decode_cursor(cursor, frozenset({"uid", "n"})) == {"uid": "0190-abc", "n": "3"}
    assert "=" not in cursor


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        "bm90IGpzb24",
        encode_cursor({"other": "x"}),
        "WzFd",
        encode_cursor({"uid": [1]}),
        encode_cursor({"uid": ""}),
    ],
)
def test_a_cursor_that_is_not_ours_is_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput, match="Invalid cursor"):
        decode_cursor(cursor, frozenset({"uid"}))


@settings(max_examples=300, deadline=None)
@given(
    params=st.dictionaries(
        st.text(alphabet=st.characters(categories=["L", "N"]) | st.sampled_from("_"), min_size=1),
        st.text() | st.integers(),
        max_size=4,
    ).filter(lambda params: not params.keys() & {"request", "response", "cursor"}),
    cursor=st.text(min_size=1),
)
def test_a_next_page_link_is_written_in_sigv4s_canonical_form(
    params: dict[str, str | int], cursor: str
) -> None:
    response = Response()
    request = Request({"type": "http", "path": "/stage/todos", "query_string": b"", "headers": []})
    link_next_page(request, response, cursor, **params)
    url = response.headers["Link"].removeprefix("<").removesuffix('>; rel="next"')
    path, _, query = url.partition("?")
    assert path == "/stage/todos"
    assert sigv4.canonical_query(query) == query  # a client signing it as written signs this
    given_back = parse_qsl(query, keep_blank_values=True, errors="strict")
    assert dict(given_back) == {name: str(value) for name, value in params.items()} | {
        "cursor": cursor
    }


def test_the_last_page_has_no_link() -> None:
    response = Response()
    link_next_page(Request({"type": "http", "path": "/todos", "headers": []}), response, None)
    assert "Link" not in response.headers
