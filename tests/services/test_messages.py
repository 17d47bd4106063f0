import pytest

from nimbus.domain.errors import NotFound, RateLimited
from nimbus.services.messages import MessageService
from nimbus.services.throttle import Limit, Throttle
from tests.factories import a_principal, a_user
from tests.services.conftest import Clock
from tests.services.memory import MemoryStorage

PER_MINUTE = Limit("messages:account", 2, 60)


@pytest.fixture
def board(storage: MemoryStorage, throttle: Throttle, clock: Clock) -> MessageService:
    return MessageService(storage.messages, throttle=throttle, limit=PER_MINUTE, clock=clock)


def test_a_post_carries_its_authors_name_and_the_time(
    board: MessageService, storage: MemoryStorage, clock: Clock
) -> None:
    user = a_user(username="Zoë")
    storage.users.add(user)
    message = board.post(a_principal(user), "  hello  ")
    assert (message.author_id, message.author, message.text) == (user.id, "Zoë", "  hello  ")
    assert message.created_at == clock.now
    assert board.list(limit=10, cursor=None).items == [message]


def test_the_board_is_everyones_newest_first_in_pages(
    board: MessageService, storage: MemoryStorage, clock: Clock
) -> None:
    authors = [a_user(), a_user()]
    for user in authors:
        storage.users.add(user)
    posted = []
    for i in range(5):
        posted.append(board.post(a_principal(authors[i % 2]), f"m{i}"))
        clock.advance(minutes=1)
    first = board.list(limit=3, cursor=None)
    rest = board.list(limit=3, cursor=first.next_cursor)
    assert [m.text for m in [*first.items, *rest.items]] == ["m4", "m3", "m2", "m1", "m0"]
    assert rest.next_cursor is None


def test_each_author_has_an_allowance_of_its_own(
    board: MessageService, storage: MemoryStorage, clock: Clock
) -> None:
    alice, bob = a_user(), a_user()
    for user in (alice, bob):
        storage.users.add(user)
    for _ in range(PER_MINUTE.count):
        board.post(a_principal(alice), "hi")
    clock.advance(seconds=20)
    with pytest.raises(RateLimited) as limited:
        board.post(a_principal(alice), "one too many")
    assert limited.value.retry_after == 40
    board.post(a_principal(bob), "bob still may")
    clock.advance(seconds=40)
    board.post(a_principal(alice), "a new minute")
    assert len(board.list(limit=10, cursor=None).items) == 4


def test_a_post_by_an_author_removed_meanwhile_is_refused(
    board: MessageService, storage: MemoryStorage
) -> None:
    user = a_user()
    storage.users.add(user)
    author = a_principal(user)
    storage.users.delete(user.id)
    with pytest.raises(NotFound):
        board.post(author, "too late")
    assert board.list(limit=10, cursor=None).items == []
