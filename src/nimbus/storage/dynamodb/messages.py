"""Messages: one board partition sorted by UUIDv7 id, and an author index to sweep a user's."""

from typing import TYPE_CHECKING, Any

from nimbus.domain.messages import Message
from nimbus.domain.paging import Page
from nimbus.storage.dynamodb.items import (
    Item,
    cursor_key,
    delete_keys,
    owner_exists,
    page_of,
    read_required_time,
    string,
    timestamp,
    transact_for_owner,
    translated,
)

if TYPE_CHECKING:
    from nimbus.storage.dynamodb import DynamoStorage

# There is one board, so every message shares this partition and the sort key orders them.
BOARD = "main"


class DynamoMessageStore:
    def __init__(self, db: "DynamoStorage") -> None:
        self._db = db

    def add(self, message: Message) -> None:
        t = self._db.tables
        with translated():
            transact_for_owner(
                self._db.client,
                owner_exists(t.users, message.author_id),
                [{"Put": {"TableName": t.messages, "Item": _message_item(message)}}],
                owner_gone="The author no longer exists",
            )

    def list(self, *, limit: int, cursor: str | None) -> Page[Message]:
        query: dict[str, Any] = {
            "TableName": self._db.tables.messages,
            "KeyConditionExpression": "board = :board",
            "ExpressionAttributeValues": {":board": string(BOARD)},
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "Limit": limit + 1,
        }
        start = cursor_key(cursor, frozenset({"id"}))
        if start is not None:
            query["ExclusiveStartKey"] = start | {"board": string(BOARD)}
        with translated():
            response = self._db.client.call("Query", **query)
        items, next_cursor = page_of(response["Items"], limit, "id")
        return Page([_message(item) for item in items], next_cursor)

    def delete_by_author(self, author_id: str) -> None:
        """Remove every message of an author, a page of the index at a time."""
        with translated():
            pages = self._db.client.pages(
                "Query",
                TableName=self._db.tables.messages,
                IndexName="by_author",
                KeyConditionExpression="author_id = :a",
                ExpressionAttributeValues={":a": string(author_id)},
                ProjectionExpression="board, id",
            )
            for page in pages:
                delete_keys(self._db.client, self._db.tables.messages, page["Items"])


def _message_item(message: Message) -> Item:
    return {
        "board": string(BOARD),
        "id": string(message.id),
        "author_id": string(message.author_id),
        "author": string(message.author),
        "text": string(message.text),
        "created_at": timestamp(message.created_at),
    }


def _message(item: Item) -> Message:
    return Message(
        id=item["id"]["S"],
        author_id=item["author_id"]["S"],
        author=item["author"]["S"],
        text=item["text"]["S"],
        created_at=read_required_time(item, "created_at"),
    )
