"""Todos, each visible only to the user who made it."""

from typing import Any

from nimbus.domain.ids import new_id
from nimbus.domain.paging import Page
from nimbus.domain.principals import Principal
from nimbus.domain.todos import Todo, TodoChanges, TodoState
from nimbus.services.clock import Clock, utc_now
from nimbus.services.reads import read_only
from nimbus.storage.base import TodoStore


class TodoService:
    def __init__(self, store: TodoStore, clock: Clock = utc_now) -> None:
        self._store = store
        self._clock = clock

    def create(self, owner: Principal, description: str, metadata: dict[str, Any]) -> Todo:
        now = self._clock()
        todo = Todo(
            uid=new_id(),
            owner=owner.user_id,
            username=owner.username,
            description=description,
            state=TodoState.UNSTARTED,
            metadata=metadata,
            created_at=now,
            updated_at=now,
            version=1,
        )
        self._store.add(todo)
        return todo

    @read_only
    def get(self, owner: Principal, uid: str) -> Todo:
        return self._store.get(owner.user_id, uid)

    @read_only
    def list(
        self, owner: Principal, *, state: TodoState | None, limit: int, cursor: str | None
    ) -> Page[Todo]:
        return self._store.list(owner.user_id, state=state, limit=limit, cursor=cursor)

    def update(
        self, owner: Principal, uid: str, changes: TodoChanges, *, expected_version: int | None
    ) -> Todo:
        return self._store.update(
            owner.user_id, uid, changes, expected_version=expected_version, at=self._clock()
        )

    def delete(self, owner: Principal, uid: str, *, expected_version: int | None) -> None:
        self._store.delete(owner.user_id, uid, expected_version=expected_version)
