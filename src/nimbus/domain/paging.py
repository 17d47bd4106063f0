"""Keyset paging: a page of items and an opaque cursor that points past its last item."""

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from nimbus.domain.errors import InvalidInput
from nimbus.values import frozen

T = TypeVar("T")


@frozen
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, keys: frozenset[str]) -> dict[str, Any]:
    """The position a cursor names; InvalidInput unless it holds exactly `keys`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError):
        # The client's own value refused in one line; the parse error adds nothing to it.
        raise InvalidInput("Invalid cursor") from None
    if not isinstance(position, dict) or position.keys() != keys:
        raise InvalidInput("Invalid cursor")
    # Every position is an id: a short, non-empty string (DynamoDB refuses an empty key value
    # outright, and a number, of any size, is never one).
    if not all(isinstance(value, str) and 0 < len(value) <= 64 for value in position.values()):
        raise InvalidInput("Invalid cursor")
    return position
