from typing import Any

import pytest

from nimbus.domain.todos import METADATA_MAX_BYTES, METADATA_MAX_DEPTH, check_metadata


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


def test_metadata_at_the_depth_limit_is_accepted() -> None:
    check_metadata(_nested(METADATA_MAX_DEPTH))


def test_metadata_past_the_depth_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="nests deeper"):
        check_metadata(_nested(METADATA_MAX_DEPTH + 1))


def test_lists_count_towards_depth() -> None:
    value: Any = 1
    for _ in range(METADATA_MAX_DEPTH):
        value = [value]
    with pytest.raises(ValueError, match="nests deeper"):
        check_metadata({"k": value})


def test_metadata_over_the_size_limit_is_refused_counting_utf8_bytes() -> None:
    check_metadata({"k": "x" * (METADATA_MAX_BYTES - 20)})
    with pytest.raises(ValueError, match="larger than"):
        check_metadata({"k": "é" * (METADATA_MAX_BYTES // 2)})
