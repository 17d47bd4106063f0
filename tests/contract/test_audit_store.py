"""The audit store: events read back exactly, newest first, filtered by subject and kind, and
gone past their retention (pruned on the SQL stores, by TTL on DynamoDB)."""

from datetime import timedelta
from typing import Any

import pytest

from nimbus.domain.audit import AuditEvent, AuditKind
from nimbus.domain.errors import Conflict, InvalidInput
from nimbus.domain.ids import new_id
from nimbus.storage.base import Storage
from nimbus.storage.dynamodb import DynamoStorage
from tests.contract.conftest import stored_user
from tests.factories import NOW

KEPT = NOW + timedelta(days=90)


def an_event(kind: AuditKind = AuditKind.LOGIN_OK, **fields: Any) -> AuditEvent:
    values: dict[str, Any] = {
        "id": new_id(),
        "at": NOW,
        "kind": kind,
        "actor": None,
        "subject": None,
        "client": "203.0.113.7",
        "request_id": "req-1",
        "detail": {},
    }
    return AuditEvent(**(values | fields))


def every_event(storage: Storage, **filters: Any) -> list[AuditEvent]:
    seen: list[AuditEvent] = []
    cursor = None
    while True:
        page = storage.audit.list(
            subject=filters.get("subject"), kind=filters.get("kind"), limit=2, cursor=cursor
        )
        seen += page.items
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_an_event_reads_back_exactly_as_written(storage: Storage) -> None:
    event = an_event(
        AuditKind.ROLE_CHANGED,
        at=NOW + timedelta(microseconds=1),
        actor=new_id(),
        subject=new_id(),
        client="2001:db8::1",
        request_id="trace-42.a",
        detail={"role": "admin", "previous": "user", "note": "héllo 👋"},
    )
    bare = an_event(AuditKind.LOGIN_FAILED, client=None, request_id=None)
    storage.audit.append(event, expires_at=KEPT)
    storage.audit.append(bare, expires_at=KEPT)
    assert list(storage.audit.list(subject=None, kind=None, limit=10, cursor=None).items) == [
        bare,
        event,
    ]


def test_an_id_is_stored_once(storage: Storage) -> None:
    event = an_event()
    storage.audit.append(event, expires_at=KEPT)
    with pytest.raises(Conflict):
        storage.audit.append(an_event(id=event.id), expires_at=KEPT)
    assert every_event(storage) == [event]


def test_the_trail_is_newest_first_in_pages(storage: Storage) -> None:
    made = [an_event(detail={"n": str(i)}) for i in range(5)]
    for event in made:
        storage.audit.append(event, expires_at=KEPT)
    first = storage.audit.list(subject=None, kind=None, limit=2, cursor=None)
    assert [e.id for e in first.items] == [made[4].id, made[3].id]
    assert first.next_cursor is not None
    second = storage.audit.list(subject=None, kind=None, limit=2, cursor=first.next_cursor)
    assert [e.id for e in second.items] == [made[2].id, made[1].id]
    assert second.next_cursor is not None
    last = storage.audit.list(subject=None, kind=None, limit=2, cursor=second.next_cursor)
    assert list(last.items) == [made[0]]
    assert last.next_cursor is None


def test_a_full_last_page_has_no_next_cursor(storage: Storage) -> None:
    for _ in range(2):
        storage.audit.append(an_event(), expires_at=KEPT)
    page = storage.audit.list(subject=None, kind=None, limit=2, cursor=None)
    assert (len(page.items), page.next_cursor) == (2, None)
    empty = storage.audit.list(subject="nobody", kind=None, limit=2, cursor=None)
    assert (list(empty.items), empty.next_cursor) == ([], None)


def test_filters_by_subject_by_kind_and_by_both_page_alike(storage: Storage) -> None:
    alice, bob = new_id(), new_id()
    kinds = [AuditKind.LOGIN_OK, AuditKind.LOGIN_FAILED, AuditKind.PASSWORD_CHANGED]
    made = [an_event(kinds[i % 3], subject=alice if i % 2 else bob) for i in range(12)]
    made.append(an_event(AuditKind.LOGIN_FAILED))  # an unknown account's: no subject
    for event in made:
        storage.audit.append(event, expires_at=KEPT)
    newest_first = made[::-1]
    assert every_event(storage) == newest_first
    assert every_event(storage, subject=alice) == [e for e in newest_first if e.subject == alice]
    failed = [e for e in newest_first if e.kind is AuditKind.LOGIN_FAILED]
    assert every_event(storage, kind=AuditKind.LOGIN_FAILED) == failed
    assert len(failed) == 5
    both = [e for e in failed if e.subject == bob]
    assert every_event(storage, subject=bob, kind=AuditKind.LOGIN_FAILED) == both
    assert len(both) == 2
    assert every_event(storage, subject=bob, kind=AuditKind.LOGOUT) == []


def test_list_refuses_a_cursor_it_did_not_make(storage: Storage) -> None:
    filters: list[tuple[str | None, AuditKind | None]] = [
        (None, None),
        ("x", None),
        (None, AuditKind.LOGOUT),
        ("x", AuditKind.LOGOUT),
    ]
    for subject, kind in filters:
        with pytest.raises(InvalidInput):
            storage.audit.list(subject=subject, kind=kind, limit=5, cursor="not-a-cursor")


def test_an_event_outlives_the_account_it_names(storage: Storage) -> None:
    user = stored_user(storage)
    event = an_event(AuditKind.USER_DELETED, actor=user.id, subject=user.id)
    storage.audit.append(event, expires_at=KEPT)
    storage.users.delete(user.id)
    assert every_event(storage, subject=user.id) == [event]


def test_events_past_their_retention_go(storage: Storage) -> None:
    old = [an_event(detail={"n": str(i)}) for i in range(3)]
    fresh = an_event()
    for event in old:
        storage.audit.append(event, expires_at=NOW - timedelta(seconds=1))
    storage.audit.append(fresh, expires_at=NOW + timedelta(seconds=1))
    if isinstance(storage, DynamoStorage):
        # DynamoDB's TTL removes them; the store asks nothing of a request for it.
        assert storage.audit.prune(NOW, limit=10) == 0
        items = storage.client.call(
            "Query",
            TableName=storage.tables.audit_events,
            KeyConditionExpression="trail = :t",
            ExpressionAttributeValues={":t": {"S": "main"}},
        )["Items"]
        expires = {item["id"]["S"]: int(item["expires"]["N"]) for item in items}
        assert expires[fresh.id] == int((NOW + timedelta(seconds=1)).timestamp())
        assert {expires[e.id] for e in old} == {int((NOW - timedelta(seconds=1)).timestamp())}
        return
    assert storage.audit.prune(NOW, limit=2) == 2  # a batch at most
    assert storage.audit.prune(NOW, limit=2) == 1
    assert storage.audit.prune(NOW, limit=2) == 0
    assert every_event(storage) == [fresh]
