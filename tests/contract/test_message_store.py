from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from nimbus.domain.errors import InvalidInput, NotFound
from nimbus.domain.messages import Message
from nimbus.storage.base import Storage
from tests.contract.conftest import stored_user
from tests.factories import NOW, a_message, a_user


def every_message(storage: Storage, limit: int = 100) -> list[Message]:
    seen: list[Message] = []
    cursor = None
    while True:
        page = storage.messages.list(limit=limit, cursor=cursor)
        seen += page.items
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_a_stored_message_reads_back_exactly_as_written(storage: Storage) -> None:
    user = stored_user(storage, username="Zoë")
    text = "  héllo, wörld 👋 <b>&amp;</b>\n\tsecond line  "
    message = a_message(user, text=text, created_at=NOW + timedelta(microseconds=1))
    storage.messages.add(message)
    (back,) = storage.messages.list(limit=10, cursor=None).items
    assert back == message
    assert back.text == text
    assert back.author == "Zoë"


def test_the_board_is_every_author_newest_first(storage: Storage) -> None:
    alice, bob = stored_user(storage), stored_user(storage)
    made = [a_message(alice if i % 2 else bob, text=f"m{i}") for i in range(5)]
    for message in made:
        storage.messages.add(message)
    first = storage.messages.list(limit=2, cursor=None)
    assert [m.id for m in first.items] == [made[4].id, made[3].id]
    assert first.next_cursor is not None
    second = storage.messages.list(limit=2, cursor=first.next_cursor)
    assert [m.id for m in second.items] == [made[2].id, made[1].id]
    assert second.next_cursor is not None
    last = storage.messages.list(limit=2, cursor=second.next_cursor)
    assert list(last.items) == [made[0]]
    assert last.next_cursor is None


def test_a_full_last_page_has_no_next_cursor(storage: Storage) -> None:
    user = stored_user(storage)
    for _ in range(2):
        storage.messages.add(a_message(user))
    page = storage.messages.list(limit=2, cursor=None)
    assert len(page.items) == 2
    assert page.next_cursor is None


def test_an_empty_board_is_one_empty_page(storage: Storage) -> None:
    page = storage.messages.list(limit=5, cursor=None)
    assert (list(page.items), page.next_cursor) == ([], None)


def test_list_refuses_a_cursor_it_did_not_make(storage: Storage) -> None:
    with pytest.raises(InvalidInput):
        storage.messages.list(limit=5, cursor="not-a-cursor")


def test_a_message_from_a_missing_author_is_refused(storage: Storage) -> None:
    with pytest.raises(NotFound):
        storage.messages.add(a_message(a_user()))
    assert every_message(storage) == []


def test_deleting_a_user_removes_their_messages_and_no_one_elses(storage: Storage) -> None:
    alice, bob = stored_user(storage), stored_user(storage)
    kept = [a_message(bob, text=f"bob {i}") for i in range(3)]
    for i, message in enumerate(kept):
        storage.messages.add(a_message(alice, text=f"alice {i}"))
        storage.messages.add(message)
    # More than one batch of deletes (25 to a request in DynamoDB).
    for i in range(30):
        storage.messages.add(a_message(alice, text=f"more {i}"))
    storage.users.delete(alice.id)
    assert every_message(storage, limit=7) == list(reversed(kept))
    with pytest.raises(NotFound):
        storage.messages.add(a_message(alice))


def test_no_message_outlives_an_author_deleted_while_messages_are_added(
    storage: Storage,
) -> None:
    user = stored_user(storage)

    def add(i: int) -> bool:
        try:
            storage.messages.add(a_message(user, text=f"m{i}"))
            return True
        except NotFound:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        adds = [pool.submit(add, i) for i in range(40)]
        storage.users.delete(user.id)
        results = [future.result() for future in adds]
    assert every_message(storage) == []
    assert results.count(True) + results.count(False) == 40
