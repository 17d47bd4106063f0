"""DynamoDB attribute values, error translation and the requests every store uses."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from nimbus import metrics
from nimbus.aws import AwsError, AwsUnreachable, JsonApi, transient
from nimbus.domain.errors import NotFound, PreconditionFailed, Unavailable
from nimbus.domain.paging import decode_cursor, encode_cursor

Item = dict[str, Any]


@contextmanager
def translated() -> Iterator[None]:
    """DynamoDB's errors become domain errors here, at the storage boundary."""
    try:
        yield
    except AwsError as exc:
        # A missing table is a deployment not finished (nimbus resources create), not a bug.
        if transient(exc) or exc.code == "ResourceNotFoundException":
            metrics.store_error(exc.code)
            raise Unavailable(f"DynamoDB: {exc.code}") from exc
        raise
    except AwsUnreachable as exc:
        metrics.store_error("unreachable")
        raise Unavailable(f"DynamoDB unreachable: {exc}") from exc


def transact(client: JsonApi, actions: list[Any]) -> None:
    client.call("TransactWriteItems", TransactItems=actions)


def transact_for_owner(
    client: JsonApi, owner_check: Any, writes: list[Any], *, owner_gone: str
) -> None:
    """Write `writes` in one transaction while `owner_check` (owner_exists) holds.

    A failed check is NotFound(owner_gone). A transaction also fails when another request
    writes the owner's item at that moment (a login updating last_login, say): that is no
    reason to refuse, so it is tried again.
    """
    for attempt in range(4):
        try:
            client.call("TransactWriteItems", TransactItems=[owner_check, *writes])
            return
        except AwsError as exc:
            if exc.code != "TransactionCanceledException":
                raise
            reasons = cancel_reasons(exc)
            if reasons[:1] == ["ConditionalCheckFailed"]:
                raise NotFound(owner_gone) from exc
            if "TransactionConflict" not in reasons:
                raise
        time.sleep(0.02 * 2**attempt)
    raise Unavailable("DynamoDB: the owner's record stayed busy")


def versioned_write(
    client: JsonApi,
    operation: str,
    request: dict[str, Any],
    *,
    exists: str,
    expected_version: int | None,
    not_found: str,
) -> dict[str, Any]:
    """An UpdateItem or DeleteItem of an item that must exist (its `exists` key attribute)
    and, when `expected_version` is given, be at that version. A failed condition on an item
    that exists is a stale version; on a missing one, NotFound(not_found): DynamoDB hands
    back the item it found (ALL_OLD) to tell them apart."""
    condition = f"attribute_exists({exists})"
    values = dict(request.get("ExpressionAttributeValues", {}))
    if expected_version is not None:
        condition += " AND version = :v"
        values[":v"] = number(expected_version)
    request = request | {
        "ConditionExpression": condition,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if values:
        request["ExpressionAttributeValues"] = values
    with translated():
        try:
            return client.call(operation, **request)
        except AwsError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise
            if exc.body.get("Item"):
                raise PreconditionFailed() from exc
            raise NotFound(not_found) from exc


def cancel_reasons(exc: AwsError) -> list[str]:
    reasons = exc.body.get("CancellationReasons") or []
    return [str(reason.get("Code", "None")) for reason in reasons]


def string(value: str) -> dict[str, str]:
    return {"S": value}


def number(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


def nullable(value: str | None) -> dict[str, Any]:
    return {"S": value} if value is not None else {"NULL": True}


def timestamp(value: datetime | None) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    return {"S": value.astimezone(UTC).isoformat(timespec="microseconds")}


def boolean(value: bool) -> dict[str, bool]:
    return {"BOOL": value}


def read_boolean(item: Item, name: str) -> bool:
    """False for an absent attribute, as for an item written before it existed."""
    return bool(item.get(name, {}).get("BOOL", False))


def read_string(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None or "NULL" in value else str(value["S"])


def read_time(item: Item, name: str) -> datetime | None:
    text = read_string(item, name)
    return datetime.fromisoformat(text) if text is not None else None


def read_required_time(item: Item, name: str) -> datetime:
    value = read_time(item, name)
    assert value is not None
    return value


def epoch(value: datetime) -> dict[str, str]:
    return number(int(value.timestamp()))


def cursor_key(cursor: str | None, keys: frozenset[str]) -> dict[str, Any] | None:
    return {k: string(str(v)) for k, v in decode_cursor(cursor, keys).items()} if cursor else None


def page_of(items: list[Item], limit: int, key: str) -> tuple[list[Item], str | None]:
    """Queries ask for one item more than a page: if it comes, there is a next page, so the
    last page never ends with a cursor to an empty one."""
    if len(items) <= limit:
        return items, None
    return items[:limit], encode_cursor({key: items[limit - 1][key]["S"]})


def owner_exists(users_table: str, owner: str) -> dict[str, Any]:
    return {
        "ConditionCheck": {
            "TableName": users_table,
            "Key": {"id": string(owner)},
            "ConditionExpression": "attribute_exists(id)",
        }
    }


def delete_keys(client: JsonApi, table: str, keys: list[Item]) -> None:
    write_batches(client, table, [{"DeleteRequest": {"Key": key}} for key in keys])


def put_items(client: JsonApi, table: str, items: list[Item]) -> None:
    write_batches(client, table, [{"PutRequest": {"Item": item}} for item in items])


def read_batch(client: JsonApi, request: dict[str, Any]) -> dict[str, list[Item]]:
    """The items of a BatchGetItem, by table. Under load DynamoDB answers part of it and hands
    the rest back: those keys are asked again with a growing pause, and the parts merged."""
    found: dict[str, list[Item]] = {}
    pending = request
    for attempt in range(8):
        answer = client.call("BatchGetItem", RequestItems=pending)
        for table, items in answer.get("Responses", {}).items():
            found.setdefault(table, []).extend(items)
        pending = answer.get("UnprocessedKeys") or {}
        if not pending:
            return found
        time.sleep(0.05 * 2**attempt)
    raise Unavailable("DynamoDB did not answer the reads")


def write_batches(client: JsonApi, table: str, requests: list[Any]) -> None:
    """BatchWriteItem takes 25 requests at a time and may hand some back under load: those
    are sent again with a growing pause."""
    for start in range(0, len(requests), 25):
        pending: dict[str, Any] = {table: requests[start : start + 25]}
        for attempt in range(8):
            unprocessed = client.call("BatchWriteItem", RequestItems=pending).get(
                "UnprocessedItems"
            )
            if not unprocessed:
                break
            pending = dict(unprocessed)
            time.sleep(0.05 * 2**attempt)
        else:
            raise Unavailable("DynamoDB did not accept the writes")
