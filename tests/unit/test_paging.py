import pytest

from nimbus.domain.errors import InvalidInput
from nimbus.domain.paging import decode_cursor, encode_cursor


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
