from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from nimbus.domain.errors import InvalidInput, NotFound, PreconditionFailed
from nimbus.domain.todos import TodoChanges, TodoState
from nimbus.storage.base import Storage
from tests.contract.conftest import stored_user
from tests.factories import NOW, a_todo, a_user

LATER = NOW + timedelta(minutes=5)


def test_a_stored_todo_reads_back_with_its_json_types(storage: Storage) -> None:
    user = stored_user(storage)
    metadata = {"i": 7, "f": 0.5, "nested": {"l": [1, None, "ü"]}, "t": True}
    todo = a_todo(user, metadata=metadata)
    storage.todos.add(todo)
    back = storage.todos.get(user.id, todo.uid)
    assert back == todo
    assert isinstance(back.metadata["i"], int)
    assert isinstance(back.metadata["f"], float)


def test_a_todo_is_found_only_under_its_owner(storage: Storage) -> None:
    alice, bob = stored_user(storage), stored_user(storage)
    todo = a_todo(alice)
    storage.todos.add(todo)
    with pytest.raises(NotFound):
        storage.todos.get(bob.id, todo.uid)
    with pytest.raises(NotFound):
        storage.todos.update(
            bob.id, todo.uid, TodoChanges(description="x"), expected_version=None, at=LATER
        )
    with pytest.raises(NotFound):
        storage.todos.delete(bob.id, todo.uid, expected_version=None)
    assert storage.todos.get(alice.id, todo.uid) == todo


def test_list_is_newest_first_paged_and_per_owner(storage: Storage) -> None:
    alice, bob = stored_user(storage), stored_user(storage)
    made = [a_todo(alice, description=f"t{i}") for i in range(5)]
    for todo in made:
        storage.todos.add(todo)
    storage.todos.add(a_todo(bob))
    first = storage.todos.list(alice.id, state=None, limit=3, cursor=None)
    assert [t.uid for t in first.items] == [t.uid for t in reversed(made)][:3]
    assert first.next_cursor is not None
    second = storage.todos.list(alice.id, state=None, limit=3, cursor=first.next_cursor)
    assert [t.uid for t in second.items] == [made[1].uid, made[0].uid]
    assert second.next_cursor is None


def test_a_full_last_page_has_no_next_cursor(storage: Storage) -> None:
    user = stored_user(storage)
    for _ in range(2):
        storage.todos.add(a_todo(user))
    assert storage.todos.list(user.id, state=None, limit=2, cursor=None).next_cursor is None


def test_list_filters_by_state_across_pages(storage: Storage) -> None:
    user = stored_user(storage)
    states = [TodoState.STARTED, TodoState.UNSTARTED] * 3
    made = [a_todo(user, state=state) for state in states]
    for todo in made:
        storage.todos.add(todo)
    page = storage.todos.list(user.id, state=TodoState.STARTED, limit=2, cursor=None)
    rest = storage.todos.list(user.id, state=TodoState.STARTED, limit=2, cursor=page.next_cursor)
    started = [t.uid for t in reversed(made) if t.state is TodoState.STARTED]
    assert [t.uid for t in [*page.items, *rest.items]] == started
    assert rest.next_cursor is None


def test_list_refuses_a_cursor_it_did_not_make(storage: Storage) -> None:
    with pytest.raises(InvalidInput):
        storage.todos.list("someone", state=None, limit=5, cursor="not-a-cursor")


def test_update_changes_only_given_fields_and_bumps_the_version(storage: Storage) -> None:
    user = stored_user(storage)
    todo = a_todo(user, metadata={"a": 1})
    storage.todos.add(todo)
    updated = storage.todos.update(
        user.id, todo.uid, TodoChanges(state=TodoState.COMPLETED), expected_version=None, at=LATER
    )
    assert updated.state is TodoState.COMPLETED
    assert (updated.description, updated.metadata) == (todo.description, {"a": 1})
    assert (updated.version, updated.updated_at, updated.created_at) == (2, LATER, NOW)
    assert storage.todos.get(user.id, todo.uid) == updated


def test_update_with_a_stale_version_fails_and_changes_nothing(storage: Storage) -> None:
    user = stored_user(storage)
    todo = a_todo(user)
    storage.todos.add(todo)
    storage.todos.update(
        user.id, todo.uid, TodoChanges(description="v2"), expected_version=1, at=LATER
    )
    with pytest.raises(PreconditionFailed):
        storage.todos.update(
            user.id, todo.uid, TodoChanges(description="lost"), expected_version=1, at=LATER
        )
    assert storage.todos.get(user.id, todo.uid).description == "v2"


def test_update_of_a_missing_todo_is_not_found_even_with_a_version(storage: Storage) -> None:
    with pytest.raises(NotFound):
        storage.todos.update(
            "u", "missing", TodoChanges(description="x"), expected_version=1, at=LATER
        )


def test_delete_honours_the_expected_version(storage: Storage) -> None:
    user = stored_user(storage)
    todo = a_todo(user)
    storage.todos.add(todo)
    with pytest.raises(PreconditionFailed):
        storage.todos.delete(user.id, todo.uid, expected_version=2)
    storage.todos.delete(user.id, todo.uid, expected_version=1)
    with pytest.raises(NotFound):
        storage.todos.get(user.id, todo.uid)


def test_concurrent_conditional_updates_lose_nothing(storage: Storage) -> None:
    """Every writer reads a version and writes against it: each version is won exactly once."""
    user = stored_user(storage)
    todo = a_todo(user, metadata={"n": 0})
    storage.todos.add(todo)

    def writer(worker: int) -> int:
        applied = 0
        for _ in range(15):
            current = storage.todos.get(user.id, todo.uid)
            changes = TodoChanges(metadata={"n": current.metadata["n"] + 1, "by": worker})
            try:
                storage.todos.update(
                    user.id, todo.uid, changes, expected_version=current.version, at=LATER
                )
                applied += 1
            except PreconditionFailed:
                pass
        return applied

    with ThreadPoolExecutor(max_workers=8) as pool:
        applied = sum(pool.map(writer, range(8)))
    final = storage.todos.get(user.id, todo.uid)
    assert applied > 0
    assert final.metadata["n"] == applied
    assert final.version == applied + 1


def test_a_todo_for_a_missing_owner_is_refused(storage: Storage) -> None:
    with pytest.raises(NotFound):
        storage.todos.add(a_todo(a_user()))


def test_no_todo_outlives_an_owner_deleted_while_todos_are_added(storage: Storage) -> None:
    user = stored_user(storage)

    def add(i: int) -> bool:
        try:
            storage.todos.add(a_todo(user, description=f"t{i}"))
            return True
        except NotFound:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        adds = [pool.submit(add, i) for i in range(40)]
        storage.users.delete(user.id)
        results = [future.result() for future in adds]
    assert storage.todos.list(user.id, state=None, limit=100, cursor=None).items == []
    assert results.count(True) + results.count(False) == 40
