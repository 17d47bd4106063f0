"""The audit trail: one partition sorted by UUIDv7 id (newest first is one query), an index per
filter, and the TTL attribute `expires`, with which DynamoDB removes events past retention."""

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nimbus.aws import AwsError
from nimbus.domain.audit import AuditEvent, AuditKind
from nimbus.domain.errors import Conflict
from nimbus.domain.paging import Page
from nimbus.storage.dynamodb.items import (
    Item,
    cursor_key,
    epoch,
    nullable,
    page_of,
    read_required_time,
    read_string,
    string,
    timestamp,
    translated,
)

if TYPE_CHECKING:
    from nimbus.storage.dynamodb import DynamoStorage

# Every event shares this partition, as the board's messages do: the sort key orders them.
TRAIL = "main"


class DynamoAuditStore:
    def __init__(self, db: "DynamoStorage") -> None:
        self._db = db

    def append(self, event: AuditEvent, *, expires_at: datetime) -> None:
        with translated():
            try:
                self._db.client.call(
                    "PutItem",
                    TableName=self._db.tables.audit_events,
                    Item=_event_item(event, expires_at),
                    ConditionExpression="attribute_not_exists(id)",
                )
            except AwsError as exc:
                if exc.code == "ConditionalCheckFailedException":
                    raise Conflict("The record already exists") from exc
                raise

    def list(
        self,
        *,
        subject: str | None,
        kind: AuditKind | None,
        limit: int,
        cursor: str | None,
    ) -> Page[AuditEvent]:
        # The index that holds exactly the events asked for: sparse ones, since an event
        # without a subject has none of the subject attributes.
        if subject is not None and kind is not None:
            both = _subject_kind(subject, kind)
            index, attribute, value = "by_subject_kind", "subject_kind", both
        elif subject is not None:
            index, attribute, value = "by_subject", "subject_id", subject
        elif kind is not None:
            index, attribute, value = "by_kind", "kind", kind.value
        else:
            index, attribute, value = None, "trail", TRAIL
        query: dict[str, Any] = {
            "TableName": self._db.tables.audit_events,
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": attribute},
            "ExpressionAttributeValues": {":k": string(value)},
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if index is not None:
            query["IndexName"] = index
        else:
            query["ConsistentRead"] = True  # only the table itself can be read consistently
        start = cursor_key(cursor, frozenset({"id"}))
        if start is not None:
            query["ExclusiveStartKey"] = start | {"trail": string(TRAIL), attribute: string(value)}
        with translated():
            response = self._db.client.call("Query", **query)
        items, next_cursor = page_of(response["Items"], limit, "id")
        return Page([_event(item) for item in items], next_cursor)

    def prune(self, now: datetime, *, limit: int) -> int:
        return 0  # the table's TTL on `expires` removes them, at no cost to a request


def _subject_kind(subject: str, kind: AuditKind) -> str:
    return f"{subject}#{kind.value}"


def _event_item(event: AuditEvent, expires_at: datetime) -> Item:
    item: Item = {
        "trail": string(TRAIL),
        "id": string(event.id),
        "at": timestamp(event.at),
        "kind": string(event.kind.value),
        "actor_id": nullable(event.actor),
        "client": nullable(event.client),
        "request_id": nullable(event.request_id),
        # As text: the detail comes back exactly, with no map of typed attributes to read.
        "detail": string(json.dumps(dict(event.detail), separators=(",", ":"))),
        "expires": epoch(expires_at),
    }
    if event.subject is not None:  # an index key is a string or absent, never NULL
        item["subject_id"] = string(event.subject)
        item["subject_kind"] = string(_subject_kind(event.subject, event.kind))
    return item


def _event(item: Item) -> AuditEvent:
    return AuditEvent(
        id=item["id"]["S"],
        at=read_required_time(item, "at"),
        kind=AuditKind(item["kind"]["S"]),
        actor=read_string(item, "actor_id"),
        subject=read_string(item, "subject_id"),
        client=read_string(item, "client"),
        request_id=read_string(item, "request_id"),
        detail=json.loads(item["detail"]["S"]),
    )
