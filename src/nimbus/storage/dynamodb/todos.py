"""Todos: owner and UUIDv7 keys, a state index, versioned conditional writes."""

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nimbus.domain.errors import NotFound, Unauthenticated
from nimbus.domain.paging import Page
from nimbus.domain.principals import SessionCheck
from nimbus.domain.todos import Todo, TodoChanges, TodoState
from nimbus.storage.dynamodb.items import (
    Item,
    cursor_key,
    delete_keys,
    number,
    owner_exists,
    page_of,
    read_required_time,
    string,
    timestamp,
    transact_for_owner,
    translated,
    versioned_write,
)

if TYPE_CHECKING:
    from nimbus.storage.dynamodb import DynamoStorage


class DynamoTodoStore:
    """A call given `live` checks the session first, with one batched read (is_active)."""

    def __init__(self, db: "DynamoStorage") -> None:
        self._db = db

    def _require_live(self, live: SessionCheck | None) -> None:
        if live is not None and not self._db.sessions.is_active(
            live.session_id, live.token_id, datetime.now(UTC)
        ):
            raise Unauthenticated()

    def add(self, todo: Todo, *, live: SessionCheck | None = None) -> None:
        self._require_live(live)
        t = self._db.tables
        with translated():
            transact_for_owner(
                self._db.client,
                owner_exists(t.users, todo.owner),
                [{"Put": {"TableName": t.todos, "Item": _todo_item(todo)}}],
                owner_gone="The owner no longer exists",
            )

    def get(self, owner: str, uid: str, *, live: SessionCheck | None = None) -> Todo:
        self._require_live(live)
        with translated():
            item = self._db.client.call(
                "GetItem",
                TableName=self._db.tables.todos,
                Key={"owner": string(owner), "uid": string(uid)},
                ConsistentRead=True,
            ).get("Item")
        if item is None:
            raise NotFound("Todo not found")
        return _todo(item)

    def list(
        self,
        owner: str,
        *,
        state: TodoState | None,
        limit: int,
        cursor: str | None,
        live: SessionCheck | None = None,
    ) -> Page[Todo]:
        self._require_live(live)
        query: dict[str, Any] = {
            "TableName": self._db.tables.todos,
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if state is None:
            query["KeyConditionExpression"] = "#owner = :owner"
            query["ExpressionAttributeNames"] = {"#owner": "owner"}
            query["ExpressionAttributeValues"] = {":owner": string(owner)}
            query["ConsistentRead"] = True
            base = {"owner": string(owner)}
        else:
            owner_state = f"{owner}#{state.value}"
            query["IndexName"] = "by_state"
            query["KeyConditionExpression"] = "owner_state = :os"
            query["ExpressionAttributeValues"] = {":os": string(owner_state)}
            base = {"owner": string(owner), "owner_state": string(owner_state)}
        start = cursor_key(cursor, frozenset({"uid"}))
        if start is not None:
            query["ExclusiveStartKey"] = start | base
        with translated():
            response = self._db.client.call("Query", **query)
        items, next_cursor = page_of(response["Items"], limit, "uid")
        return Page([_todo(item) for item in items], next_cursor)

    def update(
        self,
        owner: str,
        uid: str,
        changes: TodoChanges,
        *,
        expected_version: int | None,
        at: datetime,
        live: SessionCheck | None = None,
    ) -> Todo:
        self._require_live(live)
        sets = ["updated_at = :at", "version = version + :one"]
        values: dict[str, Any] = {":at": timestamp(at), ":one": number(1)}
        if changes.description is not None:
            sets.append("description = :d")
            values[":d"] = string(changes.description)
        names: dict[str, str] = {}
        if changes.state is not None:
            sets += ["#state = :state", "owner_state = :os"]
            names["#state"] = "state"
            values[":state"] = string(changes.state.value)
            values[":os"] = string(f"{owner}#{changes.state.value}")
        if changes.metadata is not None:
            sets.append("metadata = :m")
            values[":m"] = string(json.dumps(changes.metadata, separators=(",", ":")))
        request: dict[str, Any] = {
            "TableName": self._db.tables.todos,
            "Key": {"owner": string(owner), "uid": string(uid)},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if names:
            request["ExpressionAttributeNames"] = names
        response = versioned_write(
            self._db.client,
            "UpdateItem",
            request,
            exists="uid",
            expected_version=expected_version,
            not_found="Todo not found",
        )
        return _todo(response["Attributes"])

    def delete(
        self,
        owner: str,
        uid: str,
        *,
        expected_version: int | None,
        live: SessionCheck | None = None,
    ) -> None:
        self._require_live(live)
        versioned_write(
            self._db.client,
            "DeleteItem",
            {
                "TableName": self._db.tables.todos,
                "Key": {"owner": string(owner), "uid": string(uid)},
            },
            exists="uid",
            expected_version=expected_version,
            not_found="Todo not found",
        )

    def delete_all(self, owner: str) -> None:
        """Remove every todo of an owner, a page at a time."""
        with translated():
            pages = self._db.client.pages(
                "Query",
                TableName=self._db.tables.todos,
                KeyConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": string(owner)},
                ProjectionExpression="#owner, uid",
                ConsistentRead=True,
            )
            for page in pages:
                delete_keys(self._db.client, self._db.tables.todos, page["Items"])


def _todo_item(todo: Todo) -> Item:
    return {
        "owner": string(todo.owner),
        "uid": string(todo.uid),
        "owner_state": string(f"{todo.owner}#{todo.state.value}"),
        "username": string(todo.username),
        "description": string(todo.description),
        "state": string(todo.state.value),
        "metadata": string(json.dumps(todo.metadata, separators=(",", ":"))),
        "created_at": timestamp(todo.created_at),
        "updated_at": timestamp(todo.updated_at),
        "version": number(todo.version),
    }


def _todo(item: Item) -> Todo:
    return Todo(
        uid=item["uid"]["S"],
        owner=item["owner"]["S"],
        username=item["username"]["S"],
        description=item["description"]["S"],
        state=TodoState(item["state"]["S"]),
        metadata=json.loads(item["metadata"]["S"]),
        created_at=read_required_time(item, "created_at"),
        updated_at=read_required_time(item, "updated_at"),
        version=int(item["version"]["N"]),
    )
