from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

from nimbus.api.schemas import NoNul, check_changes
from nimbus.domain.todos import (
    DESCRIPTION_MAX_LENGTH,
    Todo,
    TodoChanges,
    TodoState,
    check_metadata,
)


def _bounded(metadata: dict[str, Any]) -> dict[str, Any]:
    check_metadata(metadata)
    return metadata


Description = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=DESCRIPTION_MAX_LENGTH),
    NoNul,
]
Metadata = Annotated[dict[str, Any], AfterValidator(_bounded)]


class TodoCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"description": "Buy milk", "metadata": {"aisle": 4}}]},
    )

    description: Description
    metadata: Metadata = Field(default_factory=dict)


class TodoUpdate(BaseModel):
    """Any of the fields; those left out keep their values (seed 000's PUT works this way)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"state": "started"}]}
    )

    description: Description | None = None
    state: TodoState | None = None
    metadata: Metadata | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        check_changes(self, not_null=("description", "state", "metadata"))
        return self

    def changes(self) -> TodoChanges:
        return TodoChanges(description=self.description, state=self.state, metadata=self.metadata)


class TodoPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    uid: str
    description: str
    state: TodoState
    metadata: dict[str, Any]
    username: str
    created_at: datetime
    updated_at: datetime
    version: int


# An answer's JSON, written straight from the service's todos with TodoPublic's fields: one
# pass, where a response_model validates every todo again and then serialises it (on a page
# of 50, about two thirds of the serialising time).
# Built when first used, as a Lambda's start answers no todo.
_FIELDS = set(TodoPublic.model_fields)


@cache
def _adapter(kind: type[Any]) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def todo_json(todo: Todo) -> bytes:
    return _adapter(Todo).dump_json(todo, include=_FIELDS)


def todos_json(todos: Sequence[Todo]) -> bytes:
    return _adapter(list[Todo]).dump_json(todos, include={"__all__": _FIELDS})
