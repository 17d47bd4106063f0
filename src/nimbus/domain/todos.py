"""Todos: seed 000's resource, with versions for optimistic locking."""

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from nimbus.values import frozen

DESCRIPTION_MAX_LENGTH = 1000
METADATA_MAX_BYTES = 16 * 1024
METADATA_MAX_DEPTH = 10


class TodoState(StrEnum):
    UNSTARTED = "unstarted"
    STARTED = "started"
    COMPLETED = "completed"


@frozen
class Todo:
    uid: str
    owner: str
    username: str
    description: str
    state: TodoState
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int


@frozen
class TodoChanges:
    """The fields a PUT or PATCH sets; None leaves a field as it is."""

    description: str | None = None
    state: TodoState | None = None
    metadata: dict[str, Any] | None = None


def check_metadata(metadata: dict[str, Any]) -> None:
    """Raise ValueError unless metadata is small and shallow enough to store and return."""
    if _depth(metadata) > METADATA_MAX_DEPTH:
        raise ValueError(f"metadata nests deeper than {METADATA_MAX_DEPTH} levels")
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"metadata is larger than {METADATA_MAX_BYTES} bytes as JSON")
    if _holds_nul(metadata):
        # PostgreSQL's jsonb cannot store it; refused on every backend alike.
        raise ValueError("metadata must not contain NUL characters")


def _holds_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _depth(value: Any) -> int:
    # Iterative, so a hostile document cannot exhaust the interpreter stack.
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > METADATA_MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest
