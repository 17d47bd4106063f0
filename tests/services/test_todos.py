from collections.abc import Callable

import pytest

from nimbus.domain.errors import InvalidInput, NotFound, PreconditionFailed, Unauthenticated
from nimbus.domain.principals import Claimant
from nimbus.domain.todos import TodoChanges, TodoState
from nimbus.domain.users import User
from nimbus.services.todos import TodoService
from tests.factories import NOW, a_principal, a_refresh_token, a_session, a_user
from tests.services.conftest import Clock
from tests.services.memory import MemoryStorage


@pytest.fixture
def todos(storage: MemoryStorage, clock: Clock) -> TodoService:
    return TodoService(storage.todos, clock)


def _signed_in(storage: MemoryStorage, user: User) -> Claimant:
    """`user`'s claim to a session of its own, live in the store."""
    session = a_session(user)
    storage.sessions.start(session, a_refresh_token(session))
    return Claimant(a_principal(user, session_id=session.id))


def test_a_new_todo_is_the_owners_unstarted_at_version_one(
    todos: TodoService, storage: MemoryStorage, clock: Clock
) -> None:
    user = a_user(username="alice")
    storage.users.add(user)
    alice = _signed_in(storage, user)
    todo = todos.create(alice, "Buy milk", {"aisle": 3})
    assert (todo.owner, todo.username, todo.state, todo.version) == (
        alice.principal.user_id,
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
    todo = todos.create(_signed_in(storage, alice), "mine", {})
    intruder = _signed_in(storage, bob)
    with pytest.raises(NotFound):
        todos.get(intruder, todo.uid)
    with pytest.raises(NotFound):
        todos.update(intruder, todo.uid, TodoChanges(description="x"), expected_version=None)
    with pytest.raises(NotFound):
        todos.delete(intruder, todo.uid, expected_version=None)
    assert todos.get(_signed_in(storage, alice), todo.uid).description == "mine"


def test_an_update_is_stamped_by_the_clock_and_needs_the_current_version(
    todos: TodoService, storage: MemoryStorage, clock: Clock
) -> None:
    user = a_user()
    storage.users.add(user)
    owner = _signed_in(storage, user)
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
    owner = _signed_in(storage, alice)
    made = [todos.create(owner, f"t{i}", {}) for i in range(5)]
    todos.create(_signed_in(storage, bob), "not alice's", {})
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
    owner = _signed_in(storage, user)
    kept = todos.create(owner, "t", {})
    storage.users.delete(user.id)
    # The account's sessions went with it; a provider's token has none, and finds no owner.
    with pytest.raises(Unauthenticated):
        todos.create(owner, "too late", {})
    provider = Claimant(a_principal(user, session_id=None))
    with pytest.raises(NotFound):
        todos.create(provider, "too late", {})
    with pytest.raises(NotFound):
        todos.get(provider, kept.uid)


@pytest.mark.parametrize("ended", ["session", "access token"])
def test_a_claimant_whose_session_or_token_ended_is_served_nothing_and_changes_nothing(
    todos: TodoService, storage: MemoryStorage, ended: str
) -> None:
    user = a_user()
    storage.users.add(user)
    owner = _signed_in(storage, user)
    kept = todos.create(owner, "kept", {})
    if ended == "session":
        assert owner.principal.session_id is not None
        storage.sessions.revoke(owner.principal.session_id, NOW)
    else:
        storage.sessions.revoke_access_token(
            owner.principal.token_id, owner.principal.expires_at, NOW
        )
    calls: list[Callable[[], object]] = [
        lambda: todos.create(owner, "new", {}),
        lambda: todos.get(owner, kept.uid),
        lambda: todos.get(owner, "no-such-todo"),
        lambda: todos.list(owner, state=None, limit=10, cursor=None),
        lambda: todos.update(owner, kept.uid, TodoChanges(description="x"), expected_version=1),
        lambda: todos.update(owner, kept.uid, TodoChanges(description="x"), expected_version=9),
        lambda: todos.delete(owner, kept.uid, expected_version=None),
    ]
    for call in calls:
        with pytest.raises(Unauthenticated):
            call()
    again = _signed_in(storage, user)
    assert todos.list(again, state=None, limit=10, cursor=None).items == [kept]
