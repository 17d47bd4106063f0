import pytest

from nimbus.domain.errors import InvalidInput, NotFound, PreconditionFailed
from nimbus.domain.todos import TodoChanges, TodoState
from nimbus.services.todos import TodoService
from tests.factories import a_principal, a_user
from tests.services.conftest import Clock
from tests.services.memory import MemoryStorage


@pytest.fixture
def todos(storage: MemoryStorage, clock: Clock) -> TodoService:
    return TodoService(storage.todos, clock)


def test_a_new_todo_is_the_owners_unstarted_at_version_one(
    todos: TodoService, storage: MemoryStorage, clock: Clock
) -> None:
    user = a_user(username="alice")
    storage.users.add(user)
    alice = a_principal(user)
    todo = todos.create(alice, "Buy milk", {"aisle": 3})
    assert (todo.owner, todo.username, todo.state, todo.version) == (
        alice.user_id,
        "alice",
        TodoState.UNSTARTED,
        1,
    )
    assert todo.created_at == todo.updated_at == clock.now
    assert todos.get(alice, todo.uid) == todo


def test_another_users_todo_is_not_found_to_read_change_or_delete(
    todos: TodoService, storage: MemoryStorage
) -> None:
    alice, bob = (a_user(username=name) for name in ("alice", "bob"))
    for user in (alice, bob):
        storage.users.add(user)
    todo = todos.create(a_principal(alice), "mine", {})
    intruder = a_principal(bob)
    with pytest.raises(NotFound):
        todos.get(intruder, todo.uid)
    with pytest.raises(NotFound):
        todos.update(intruder, todo.uid, TodoChanges(description="x"), expected_version=None)
    with pytest.raises(NotFound):
        todos.delete(intruder, todo.uid, expected_version=None)
    assert todos.get(a_principal(alice), todo.uid).description == "mine"


def test_an_update_is_stamped_by_the_clock_and_needs_the_current_version(
    todos: TodoService, storage: MemoryStorage, clock: Clock
) -> None:
    user = a_user()
    storage.users.add(user)
    owner = a_principal(user)
    todo = todos.create(owner, "draft", {})
    clock.advance(minutes=5)
    started = todos.update(
        owner, todo.uid, TodoChanges(state=TodoState.STARTED), expected_version=1
    )
    assert (started.state, started.version, started.description) == (TodoState.STARTED, 2, "draft")
    assert (started.created_at, started.updated_at) == (todo.created_at, clock.now)
    with pytest.raises(PreconditionFailed):
        todos.update(owner, todo.uid, TodoChanges(description="lost"), expected_version=1)
    with pytest.raises(PreconditionFailed):
        todos.delete(owner, todo.uid, expected_version=1)
    todos.delete(owner, todo.uid, expected_version=2)
    with pytest.raises(NotFound):
        todos.get(owner, todo.uid)


def test_the_list_is_the_owners_newest_first_by_state_and_paged(
    todos: TodoService, storage: MemoryStorage
) -> None:
    alice, bob = a_user(), a_user()
    for user in (alice, bob):
        storage.users.add(user)
    owner = a_principal(alice)
    made = [todos.create(owner, f"t{i}", {}) for i in range(5)]
    todos.create(a_principal(bob), "not alice's", {})
    for todo in made[::2]:
        todos.update(owner, todo.uid, TodoChanges(state=TodoState.COMPLETED), expected_version=1)
    first = todos.list(owner, state=None, limit=3, cursor=None)
    rest = todos.list(owner, state=None, limit=3, cursor=first.next_cursor)
    assert [t.description for t in [*first.items, *rest.items]] == ["t4", "t3", "t2", "t1", "t0"]
    assert rest.next_cursor is None
    done = todos.list(owner, state=TodoState.COMPLETED, limit=10, cursor=None)
    assert [t.description for t in done.items] == ["t4", "t2", "t0"]
    with pytest.raises(InvalidInput):
        todos.list(owner, state=None, limit=3, cursor="not-a-cursor")


def test_a_todo_for_an_account_removed_meanwhile_is_refused(
    todos: TodoService, storage: MemoryStorage
) -> None:
    user = a_user()
    storage.users.add(user)
    owner = a_principal(user)
    kept = todos.create(owner, "t", {})
    storage.users.delete(user.id)
    with pytest.raises(NotFound):
        todos.create(owner, "too late", {})
    with pytest.raises(NotFound):
        todos.get(owner, kept.uid)
