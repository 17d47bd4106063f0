"""Todos, each visible only to the user who made it.

Each method serves a Claimant: the store call that does the work also checks that the
claimant's session is live, so a request to a todo route costs the store one call."""

from typing import Any

from nimbus.domain.ids import new_id
from nimbus.domain.paging import Page
from nimbus.domain.principals import Claimant
from nimbus.domain.todos import Todo, TodoChanges, TodoState
from nimbus.services.clock import Clock, utc_now
from nimbus.services.reads import read_only
from nimbus.storage.base import TodoStore


class TodoService:
    def __init__(self, store: TodoStore, clock: Clock = utc_now) -> None:
        self._store = store
        self._clock = clock

    def create(self, owner: Claimant, description: str, metadata: dict[str, Any]) -> Todo:
        now = self._clock()
        principal = owner.principal
        todo = Todo(
            uid=new_id(),
            owner=principal.user_id,
            username=principal.username,
            description=description,
            state=TodoState.UNSTARTED,
            metadata=metadata,
            created_at=now,
            updated_at=now,
            version=1,
        )
        self._store.add(todo, live=owner.check)
        return todo

    @read_only
    def get(self, owner: Claimant, uid: str) -> Todo:
        return self._store.get(owner.principal.user_id, uid, live=owner.check)

    @read_only
    def list(
        self, owner: Claimant, *, state: TodoState | None, limit: int, cursor: str | None
    ) -> Page[Todo]:
        return self._store.list(
            owner.principal.user_id, state=state, limit=limit, cursor=cursor, live=owner.check
        )

    def update(
        self, owner: Claimant, uid: str, changes: TodoChanges, *, expected_version: int | None
    ) -> Todo:
        return self._store.update(
            owner.principal.user_id,
            uid,
            changes,
            expected_version=expected_version,
            at=self._clock(),
            live=owner.check,
        )

    def delete(self, owner: Claimant, uid: str, *, expected_version: int | None) -> None:
        self._store.delete(
            owner.principal.user_id, uid, expected_version=expected_version, live=owner.check
        )
