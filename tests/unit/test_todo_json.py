"""The todo routes write their JSON straight from the service's todos (todo_json, todos_json)
instead of through the response_model: it must be what the response_model writes, field for
field, and never the owner's id."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from nimbus.api.schemas.todos import TodoPublic, todo_json, todos_json
from nimbus.domain.todos import Todo, TodoState

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
TODOS = st.builds(
    Todo,
    uid=st.text(min_size=1, max_size=40),
    owner=st.uuids().map(str),
    username=st.text(min_size=1, max_size=30),
    description=st.text(min_size=1, max_size=60),
    state=st.sampled_from(TodoState),
    metadata=st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=4),
    created_at=TIMES,
    updated_at=TIMES,
    version=st.integers(1, 2**62),
)
PUBLIC = TypeAdapter(list[TodoPublic])


def _as_the_response_model_writes(todos: list[Todo]) -> Any:
    return json.loads(PUBLIC.dump_json(PUBLIC.validate_python(todos, from_attributes=True)))


@settings(max_examples=200, deadline=None)
@given(st.lists(TODOS, max_size=5))
def test_the_json_is_the_response_models(todos: list[Todo]) -> None:
    expected = _as_the_response_model_writes(todos)
    assert json.loads(todos_json(todos)) == expected
    for todo, one in zip(todos, expected, strict=True):
        assert json.loads(todo_json(todo)) == one


def test_a_todo_has_every_public_field_and_no_other() -> None:
    now = datetime(2026, 12, 2, 4, 5, 6, 7, tzinfo=UTC)
    todo = Todo(
        uid="01a",
        owner="the-owners-id",
        username="alice",
        description="Buy milk \u2028 \U0001f95b",
        state=TodoState.STARTED,
        metadata={"aisle": 4, "nested": {"list": [1, None, "x"]}},
        created_at=now,
        updated_at=now + timedelta(seconds=1),
        version=3,
    )
    written = json.loads(todo_json(todo))
    assert set(written) == set(TodoPublic.model_fields)
    assert written["created_at"] == "2026-12-02T04:05:06.000007Z"
    assert written["state"] == "started"
    assert b"the-owners-id" not in todos_json([todo])
