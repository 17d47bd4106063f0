"""DynamoDB, for the serverless deployment: one table per kind of record, queries only.

Tables (names prefixed by `table_prefix`):
- users        id                       plus a GSI `by_kind` (kind, id) for the admin listing
- user_keys    key ("username#...", "email#...", "subject#...") -> user id: uniqueness
- todos        owner, uid (UUIDv7: newest first)  plus a GSI `by_state` (owner_state, uid)
- sessions     id                        plus a GSI `by_user` (user_id, id)
- refresh_tokens id; revoked_tokens jti; rate_limits key: each with a TTL attribute `expires`

Uniqueness and every multi-item change use transactions with condition expressions; a
todo is only written while its owner exists (a ConditionCheck in the same transaction), so
none outlives a deleted user. Metadata is stored as its JSON text: types come back exactly
(no Decimal round trip), and the service bounds its size far below the item limit.
"""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from nimbus.domain.errors import Conflict, NotFound, PreconditionFailed, Unavailable
from nimbus.domain.paging import Page, decode_cursor, encode_cursor
from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.todos import Todo, TodoChanges, TodoState
from nimbus.domain.users import Role, Unset, User, UserChanges, email_key, username_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]
REVOCATION_MARGIN = timedelta(hours=1)


def open_url(url: str) -> "DynamoStorage":
    """dynamodb://?region=R&table_prefix=P[&endpoint_url=http://HOST:PORT]"""
    query = {key: values[-1] for key, values in parse_qs(urlsplit(url).query).items()}
    unknown = set(query) - {"region", "table_prefix", "endpoint_url"}
    if unknown:
        raise ValueError(f"unknown dynamodb:// parameters: {', '.join(sorted(unknown))}")
    return DynamoStorage(
        region=query.get("region", "us-east-1"),
        table_prefix=query.get("table_prefix", "nimbus-"),
        endpoint_url=query.get("endpoint_url"),
    )


class Tables:
    def __init__(self, prefix: str) -> None:
        self.users = f"{prefix}users"
        self.user_keys = f"{prefix}user_keys"
        self.todos = f"{prefix}todos"
        self.sessions = f"{prefix}sessions"
        self.refresh_tokens = f"{prefix}refresh_tokens"
        self.revoked_tokens = f"{prefix}revoked_tokens"
        self.rate_limits = f"{prefix}rate_limits"

    def all(self) -> list[str]:
        return [
            self.users,
            self.user_keys,
            self.todos,
            self.sessions,
            self.refresh_tokens,
            self.revoked_tokens,
            self.rate_limits,
        ]


class DynamoStorage:
    def __init__(self, *, region: str, table_prefix: str, endpoint_url: str | None) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.tables = Tables(table_prefix)
        self._client: DynamoDBClient | None = None
        self.users = DynamoUserStore(self)
        self.todos = DynamoTodoStore(self)
        self.sessions = DynamoSessionStore(self)
        self.rate_limits = DynamoRateLimitStore(self)

    @property
    def client(self) -> "DynamoDBClient":
        # Made on first use: building a botocore client is most of a cold start's budget.
        if self._client is None:
            self._client = boto3.client(
                "dynamodb",
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=Config(
                    connect_timeout=3,
                    read_timeout=5,
                    retries={"max_attempts": 3, "mode": "standard"},
                ),
            )
        return self._client

    def create_schema(self) -> list[str]:
        """Create missing tables (and their TTLs); tables that exist are left as they are."""
        with translated():
            existing = set(self._existing_tables())
            for name, definition in self._definitions().items():
                if name in existing:
                    continue
                try:
                    self.client.create_table(
                        TableName=name, BillingMode="PAY_PER_REQUEST", **definition
                    )
                except ClientError as exc:
                    if _code(exc) != "ResourceInUseException":  # another worker made it
                        raise
            for name in self.tables.all():
                self.client.get_waiter("table_exists").wait(
                    TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
                )
            for name in (self.tables.refresh_tokens, self.tables.revoked_tokens,
                         self.tables.rate_limits):  # fmt: skip
                self.client.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"},
                )
        return self.tables.all()

    def drop_schema(self) -> list[str]:
        with translated():
            existing = set(self._existing_tables())
            dropped = [name for name in self.tables.all() if name in existing]
            for name in dropped:
                self.client.delete_table(TableName=name)
        return dropped

    def ping(self) -> None:
        with translated():
            self.client.describe_table(TableName=self.tables.users)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _existing_tables(self) -> Iterator[str]:
        for page in self.client.get_paginator("list_tables").paginate():
            yield from page["TableNames"]

    def _definitions(self) -> dict[str, dict[str, Any]]:
        t = self.tables
        return {
            t.users: _table(
                [("id", "S")],
                gsi=("by_kind", [("kind", "S"), ("id", "S")]),
                extra_attributes=(("kind", "S"),),
            ),
            t.user_keys: _table([("key", "S")]),
            t.todos: _table(
                [("owner", "S"), ("uid", "S")],
                gsi=("by_state", [("owner_state", "S"), ("uid", "S")]),
                extra_attributes=(("owner_state", "S"),),
            ),
            t.sessions: _table(
                [("id", "S")],
                gsi=("by_user", [("user_id", "S"), ("id", "S")]),
                extra_attributes=(("user_id", "S"),),
            ),
            t.refresh_tokens: _table([("id", "S")]),
            t.revoked_tokens: _table([("jti", "S")]),
            t.rate_limits: _table([("key", "S")]),
        }


def _table(
    keys: list[tuple[str, str]],
    *,
    gsi: tuple[str, list[tuple[str, str]]] | None = None,
    extra_attributes: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    roles = ["HASH", "RANGE"]
    definition: dict[str, Any] = {
        "KeySchema": [{"AttributeName": n, "KeyType": roles[i]} for i, (n, _) in enumerate(keys)],
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in [*keys, *extra_attributes]
        ],
    }
    if gsi is not None:
        index, index_keys = gsi
        definition["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": n, "KeyType": roles[i]} for i, (n, _) in enumerate(index_keys)
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
    return definition


@contextmanager
def translated() -> Iterator[None]:
    """boto errors become domain errors here, at the storage boundary."""
    try:
        yield
    except ClientError as exc:
        code = _code(exc)
        if code in ("ResourceNotFoundException", "ProvisionedThroughputExceededException",
                    "ThrottlingException", "RequestLimitExceeded", "InternalServerError",
                    "ServiceUnavailable"):  # fmt: skip
            raise Unavailable(f"DynamoDB: {code}") from None
        raise
    except BotoCoreError as exc:
        raise Unavailable(f"DynamoDB unreachable: {exc}") from None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _transact(client: "DynamoDBClient", actions: list[Any]) -> None:
    client.transact_write_items(TransactItems=actions)


def _cancel_reasons(exc: ClientError) -> list[str]:
    reasons = exc.response.get("CancellationReasons") or []
    return [str(reason.get("Code", "None")) for reason in reasons]


# Attribute values


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


def _opt_s(value: str | None) -> dict[str, Any]:
    return {"S": value} if value is not None else {"NULL": True}


def _t(value: datetime | None) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    return {"S": value.astimezone(UTC).isoformat(timespec="microseconds")}


def _get_s(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None or "NULL" in value else str(value["S"])


def _get_t(item: Item, name: str) -> datetime | None:
    text = _get_s(item, name)
    return datetime.fromisoformat(text) if text is not None else None


def _req_t(item: Item, name: str) -> datetime:
    value = _get_t(item, name)
    assert value is not None
    return value


def _epoch(value: datetime) -> dict[str, str]:
    return _n(int(value.timestamp()))


def _cursor_key(cursor: str | None, keys: frozenset[str]) -> dict[str, Any] | None:
    return {k: _s(str(v)) for k, v in decode_cursor(cursor, keys).items()} if cursor else None


def _page_of(items: list[Item], limit: int, key: str) -> tuple[list[Item], str | None]:
    """Queries ask for one item more than a page: if it comes, there is a next page, so the
    last page never ends with a cursor to an empty one."""
    if len(items) <= limit:
        return items, None
    return items[:limit], encode_cursor({key: items[limit - 1][key]["S"]})


class DynamoUserStore:
    def __init__(self, db: DynamoStorage) -> None:
        self._db = db

    def add(self, user: User) -> None:
        t = self._db.tables
        markers = self._markers(user)
        actions: Any = [
            {
                "Put": {
                    "TableName": t.users,
                    "Item": _user_item(user),
                    "ConditionExpression": "attribute_not_exists(id)",
                }
            }
        ]
        actions += [
            {
                "Put": {
                    "TableName": t.user_keys,
                    "Item": {"key": _s(marker), "user_id": _s(user.id)},
                    "ConditionExpression": "attribute_not_exists(#k)",
                    "ExpressionAttributeNames": {"#k": "key"},
                }
            }
            for marker in markers
        ]
        with translated():
            try:
                _transact(self._db.client, actions)
            except ClientError as exc:
                if _code(exc) != "TransactionCanceledException":
                    raise
                reasons = _cancel_reasons(exc)
                taken = [m for m, r in zip(markers, reasons[1:], strict=False) if r != "None"]
                raise Conflict(_conflict_message(taken)) from None

    def get(self, user_id: str) -> User:
        with translated():
            item = self._db.client.get_item(
                TableName=self._db.tables.users, Key={"id": _s(user_id)}, ConsistentRead=True
            ).get("Item")
        if item is None:
            raise NotFound("User not found")
        return _user(item)

    def find_by_username(self, username: str) -> User | None:
        return self._by_marker(f"username#{username_key(username)}")

    def find_by_email(self, email: str) -> User | None:
        return self._by_marker(f"email#{email_key(email)}")

    def find_by_external_subject(self, subject: str) -> User | None:
        return self._by_marker(f"subject#{subject}")

    def list(self, *, limit: int, cursor: str | None) -> Page[User]:
        query: dict[str, Any] = {
            "TableName": self._db.tables.users,
            "IndexName": "by_kind",
            "KeyConditionExpression": "kind = :kind",
            "ExpressionAttributeValues": {":kind": _s("user")},
            "Limit": limit + 1,
        }
        start = _cursor_key(cursor, frozenset({"id"}))
        if start is not None:
            query["ExclusiveStartKey"] = start | {"kind": _s("user")}
        with translated():
            response = self._db.client.query(**query)
        items, next_cursor = _page_of(response["Items"], limit, "id")
        return Page([_user(item) for item in items], next_cursor)

    def record_login(self, user_id: str, at: datetime, password_hash: str | None) -> None:
        expression = "SET last_login = :at"
        values: dict[str, Any] = {":at": _t(at)}
        if password_hash is not None:
            expression += ", password_hash = :hash"
            values[":hash"] = _s(password_hash)
        with translated():
            try:
                self._db.client.update_item(
                    TableName=self._db.tables.users,
                    Key={"id": _s(user_id)},
                    UpdateExpression=expression,
                    ConditionExpression="attribute_exists(id)",
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise

    def update(
        self, user_id: str, changes: UserChanges, *, expected_version: int | None, at: datetime
    ) -> User:
        # Read, then write on condition that the version read is still current; without an
        # If-Match from the caller, a lost race is simply tried again.
        for _ in range(5):
            try:
                return self._update_once(user_id, changes, expected_version, at)
            except _VersionMoved:
                if expected_version is not None:
                    raise PreconditionFailed() from None
        raise Unavailable("the user record is changing too fast to update")

    def _update_once(
        self, user_id: str, changes: UserChanges, expected_version: int | None, at: datetime
    ) -> User:
        current = self.get(user_id)
        if expected_version is not None and current.version != expected_version:
            raise PreconditionFailed()
        t = self._db.tables
        sets = ["updated_at = :at", "version = version + :one"]
        values: dict[str, Any] = {":at": _t(at), ":one": _n(1), ":v": _n(current.version)}
        names: dict[str, str] = {}
        actions: Any = []
        if not isinstance(changes.email, Unset) and changes.email != current.email:
            sets.append("email = :email")
            values[":email"] = _opt_s(changes.email)
            if changes.email:
                actions.append(_claim(t.user_keys, f"email#{email_key(changes.email)}", user_id))
            if current.email:
                actions.append(_release(t.user_keys, f"email#{email_key(current.email)}", user_id))
        if not isinstance(changes.name, Unset):
            sets.append("#name = :name")
            values[":name"] = _opt_s(changes.name)
            names["#name"] = "name"
        if not isinstance(changes.role, Unset):
            sets.append("#role = :role")
            values[":role"] = _s(changes.role.value)
            names["#role"] = "role"
        if not isinstance(changes.password_hash, Unset):
            sets.append("password_hash = :hash")
            values[":hash"] = _s(changes.password_hash)
        # The version read above must still be current: that makes the whole change atomic.
        update: dict[str, Any] = {
            "TableName": t.users,
            "Key": {"id": _s(user_id)},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": "version = :v",
            "ExpressionAttributeValues": values,
        }
        if names:
            update["ExpressionAttributeNames"] = names
        with translated():
            try:
                _transact(self._db.client, [{"Update": update}, *actions])
            except ClientError as exc:
                if _code(exc) != "TransactionCanceledException":
                    raise
                reasons = _cancel_reasons(exc)
                if any(reason != "None" for reason in reasons[1:]):
                    raise Conflict("That email is already registered") from None
                raise _VersionMoved() from None
        return self.get(user_id)

    def delete(self, user_id: str) -> None:
        user = self.get(user_id)
        t = self._db.tables
        actions: Any = [
            {
                "Delete": {
                    "TableName": t.users,
                    "Key": {"id": _s(user_id)},
                    "ConditionExpression": "attribute_exists(id)",
                }
            }
        ]
        actions += [
            {"Delete": {"TableName": t.user_keys, "Key": {"key": _s(marker)}}}
            for marker in self._markers(user)
        ]
        with translated():
            try:
                _transact(self._db.client, actions)
            except ClientError as exc:
                if _code(exc) == "TransactionCanceledException":
                    raise NotFound("User not found") from None
                raise
        # The user is gone, so no new todo or session can be written for it (each checks
        # that its owner exists); sweep what was there.
        self._db.todos.delete_all(user_id)
        self._db.sessions.delete_all(user_id)

    def _markers(self, user: User) -> tuple[str, ...]:
        markers: tuple[str, ...] = (f"username#{username_key(user.username)}",)
        if user.email:
            markers += (f"email#{email_key(user.email)}",)
        if user.external_subject:
            markers += (f"subject#{user.external_subject}",)
        return markers

    def _by_marker(self, marker: str) -> User | None:
        with translated():
            item = self._db.client.get_item(
                TableName=self._db.tables.user_keys, Key={"key": _s(marker)}, ConsistentRead=True
            ).get("Item")
        if item is None:
            return None
        try:
            return self.get(item["user_id"]["S"])
        except NotFound:
            return None


class _VersionMoved(Exception):
    pass


def _claim(table: str, key: str, user_id: str) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": table,
            "Item": {"key": _s(key), "user_id": _s(user_id)},
            "ConditionExpression": "attribute_not_exists(#k)",
            "ExpressionAttributeNames": {"#k": "key"},
        }
    }


def _release(table: str, key: str, user_id: str) -> dict[str, Any]:
    return {
        "Delete": {
            "TableName": table,
            "Key": {"key": _s(key)},
            "ConditionExpression": "user_id = :owner",
            "ExpressionAttributeValues": {":owner": _s(user_id)},
        }
    }


def _conflict_message(taken: list[str]) -> str:
    if any(marker.startswith("username#") for marker in taken):
        return "That username is taken"
    if any(marker.startswith("email#") for marker in taken):
        return "That email is already registered"
    return "The record already exists"


def _user_item(user: User) -> Item:
    return {
        "id": _s(user.id),
        "kind": _s("user"),
        "username": _s(user.username),
        "email": _opt_s(user.email),
        "name": _opt_s(user.name),
        "role": _s(user.role.value),
        "password_hash": _s(user.password_hash),
        "created_at": _t(user.created_at),
        "updated_at": _t(user.updated_at),
        "last_login": _t(user.last_login),
        "version": _n(user.version),
        "external_subject": _opt_s(user.external_subject),
    }


def _user(item: Item) -> User:
    return User(
        id=item["id"]["S"],
        username=item["username"]["S"],
        email=_get_s(item, "email"),
        name=_get_s(item, "name"),
        role=Role(item["role"]["S"]),
        password_hash=item["password_hash"]["S"],
        created_at=_req_t(item, "created_at"),
        updated_at=_req_t(item, "updated_at"),
        last_login=_get_t(item, "last_login"),
        version=int(item["version"]["N"]),
        external_subject=_get_s(item, "external_subject"),
    )


class DynamoTodoStore:
    def __init__(self, db: DynamoStorage) -> None:
        self._db = db

    def add(self, todo: Todo) -> None:
        t = self._db.tables
        with translated():
            try:
                _transact(
                    self._db.client,
                    [
                        _owner_exists(t.users, todo.owner),
                        {"Put": {"TableName": t.todos, "Item": _todo_item(todo)}},
                    ],
                )
            except ClientError as exc:
                if _code(exc) == "TransactionCanceledException":
                    raise NotFound("The owner no longer exists") from None
                raise

    def get(self, owner: str, uid: str) -> Todo:
        with translated():
            item = self._db.client.get_item(
                TableName=self._db.tables.todos,
                Key={"owner": _s(owner), "uid": _s(uid)},
                ConsistentRead=True,
            ).get("Item")
        if item is None:
            raise NotFound("Todo not found")
        return _todo(item)

    def list(
        self, owner: str, *, state: TodoState | None, limit: int, cursor: str | None
    ) -> Page[Todo]:
        query: dict[str, Any] = {
            "TableName": self._db.tables.todos,
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if state is None:
            query["KeyConditionExpression"] = "#owner = :owner"
            query["ExpressionAttributeNames"] = {"#owner": "owner"}
            query["ExpressionAttributeValues"] = {":owner": _s(owner)}
            query["ConsistentRead"] = True
            base = {"owner": _s(owner)}
        else:
            owner_state = f"{owner}#{state.value}"
            query["IndexName"] = "by_state"
            query["KeyConditionExpression"] = "owner_state = :os"
            query["ExpressionAttributeValues"] = {":os": _s(owner_state)}
            base = {"owner": _s(owner), "owner_state": _s(owner_state)}
        start = _cursor_key(cursor, frozenset({"uid"}))
        if start is not None:
            query["ExclusiveStartKey"] = start | base
        with translated():
            response = self._db.client.query(**query)
        items, next_cursor = _page_of(response["Items"], limit, "uid")
        return Page([_todo(item) for item in items], next_cursor)

    def update(
        self,
        owner: str,
        uid: str,
        changes: TodoChanges,
        *,
        expected_version: int | None,
        at: datetime,
    ) -> Todo:
        sets = ["updated_at = :at", "version = version + :one"]
        values: dict[str, Any] = {":at": _t(at), ":one": _n(1)}
        if changes.description is not None:
            sets.append("description = :d")
            values[":d"] = _s(changes.description)
        names: dict[str, str] = {}
        if changes.state is not None:
            sets += ["#state = :state", "owner_state = :os"]
            names["#state"] = "state"
            values[":state"] = _s(changes.state.value)
            values[":os"] = _s(f"{owner}#{changes.state.value}")
        if changes.metadata is not None:
            sets.append("metadata = :m")
            values[":m"] = _s(json.dumps(changes.metadata, separators=(",", ":")))
        condition = "attribute_exists(uid)"
        if expected_version is not None:
            condition += " AND version = :v"
            values[":v"] = _n(expected_version)
        request: dict[str, Any] = {
            "TableName": self._db.tables.todos,
            "Key": {"owner": _s(owner), "uid": _s(uid)},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if names:
            request["ExpressionAttributeNames"] = names
        with translated():
            try:
                response = self._db.client.update_item(**request)
            except ClientError as exc:
                if _code(exc) == "ConditionalCheckFailedException":
                    raise _miss(exc) from None
                raise
        return _todo(response["Attributes"])

    def delete(self, owner: str, uid: str, *, expected_version: int | None) -> None:
        condition = "attribute_exists(uid)"
        values: dict[str, Any] = {}
        if expected_version is not None:
            condition += " AND version = :v"
            values[":v"] = _n(expected_version)
        request: dict[str, Any] = {
            "TableName": self._db.tables.todos,
            "Key": {"owner": _s(owner), "uid": _s(uid)},
            "ConditionExpression": condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if values:
            request["ExpressionAttributeValues"] = values
        with translated():
            try:
                self._db.client.delete_item(**request)
            except ClientError as exc:
                if _code(exc) == "ConditionalCheckFailedException":
                    raise _miss(exc) from None
                raise

    def delete_all(self, owner: str) -> None:
        """Remove every todo of an owner, a page at a time."""
        with translated():
            pages = self._db.client.get_paginator("query").paginate(
                TableName=self._db.tables.todos,
                KeyConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": _s(owner)},
                ProjectionExpression="#owner, uid",
                ConsistentRead=True,
            )
            for page in pages:
                _delete_keys(self._db.client, self._db.tables.todos, page["Items"])


def _miss(exc: ClientError) -> Exception:
    """A failed condition on an existing item is a stale version; on a missing one, 404."""
    if exc.response.get("Item"):
        return PreconditionFailed()
    return NotFound("Todo not found")


def _owner_exists(users_table: str, owner: str) -> dict[str, Any]:
    return {
        "ConditionCheck": {
            "TableName": users_table,
            "Key": {"id": _s(owner)},
            "ConditionExpression": "attribute_exists(id)",
        }
    }


def _delete_keys(client: "DynamoDBClient", table: str, keys: list[Item]) -> None:
    for start in range(0, len(keys), 25):
        requests: list[Any] = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
        pending: dict[str, Any] = {table: requests}
        for attempt in range(8):
            unprocessed = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")
            if not unprocessed:
                break
            pending = dict(unprocessed)
            time.sleep(0.05 * 2**attempt)
        else:
            raise Unavailable("DynamoDB did not accept the deletes")


def _todo_item(todo: Todo) -> Item:
    return {
        "owner": _s(todo.owner),
        "uid": _s(todo.uid),
        "owner_state": _s(f"{todo.owner}#{todo.state.value}"),
        "username": _s(todo.username),
        "description": _s(todo.description),
        "state": _s(todo.state.value),
        "metadata": _s(json.dumps(todo.metadata, separators=(",", ":"))),
        "created_at": _t(todo.created_at),
        "updated_at": _t(todo.updated_at),
        "version": _n(todo.version),
    }


def _todo(item: Item) -> Todo:
    return Todo(
        uid=item["uid"]["S"],
        owner=item["owner"]["S"],
        username=item["username"]["S"],
        description=item["description"]["S"],
        state=TodoState(item["state"]["S"]),
        metadata=json.loads(item["metadata"]["S"]),
        created_at=_req_t(item, "created_at"),
        updated_at=_req_t(item, "updated_at"),
        version=int(item["version"]["N"]),
    )


class DynamoSessionStore:
    def __init__(self, db: DynamoStorage) -> None:
        self._db = db

    def start(self, session: Session, token: RefreshToken) -> None:
        t = self._db.tables
        with translated():
            try:
                _transact(
                    self._db.client,
                    [
                        _owner_exists(t.users, session.user_id),
                        {"Put": {"TableName": t.sessions, "Item": _session_item(session)}},
                        {"Put": {"TableName": t.refresh_tokens, "Item": _token_item(token)}},
                    ],
                )
            except ClientError as exc:
                if _code(exc) == "TransactionCanceledException":
                    raise NotFound("The owner no longer exists") from None
                raise

    def find_refresh(self, token_id: str) -> tuple[RefreshToken, Session] | None:
        t = self._db.tables
        with translated():
            token_item = self._db.client.get_item(
                TableName=t.refresh_tokens, Key={"id": _s(token_id)}, ConsistentRead=True
            ).get("Item")
            if token_item is None:
                return None
            session_item = self._db.client.get_item(
                TableName=t.sessions, Key={"id": token_item["session_id"]}, ConsistentRead=True
            ).get("Item")
        if session_item is None:
            return None
        return _token(token_item), _session(session_item)

    def rotate(self, used_id: str, replacement: RefreshToken, at: datetime) -> bool:
        t = self._db.tables
        with translated():
            try:
                _transact(
                    self._db.client,
                    [
                        {
                            "Update": {
                                "TableName": t.refresh_tokens,
                                "Key": {"id": _s(used_id)},
                                "UpdateExpression": "SET used_at = :at",
                                "ConditionExpression": "attribute_type(used_at, :null)",
                                "ExpressionAttributeValues": {":at": _t(at), ":null": _s("NULL")},
                            }
                        },
                        {
                            "ConditionCheck": {
                                "TableName": t.sessions,
                                "Key": {"id": _s(replacement.session_id)},
                                "ConditionExpression": "attribute_type(revoked_at, :null)",
                                "ExpressionAttributeValues": {":null": _s("NULL")},
                            }
                        },
                        {"Put": {"TableName": t.refresh_tokens, "Item": _token_item(replacement)}},
                    ],
                )
            except ClientError as exc:
                if _code(exc) == "TransactionCanceledException":
                    return False
                raise
        return True

    def revoke(self, session_id: str, at: datetime) -> None:
        with translated():
            try:
                self._db.client.update_item(
                    TableName=self._db.tables.sessions,
                    Key={"id": _s(session_id)},
                    UpdateExpression="SET revoked_at = :at",
                    ConditionExpression="attribute_type(revoked_at, :null)",
                    ExpressionAttributeValues={":at": _t(at), ":null": _s("NULL")},
                )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise

    def revoke_all(self, user_id: str, at: datetime) -> None:
        for item in self._sessions_of(user_id):
            self.revoke(item["id"]["S"], at)

    def revoke_access_token(self, jti: str, expires_at: datetime, at: datetime) -> None:
        with translated():
            self._db.client.put_item(
                TableName=self._db.tables.revoked_tokens,
                Item={"jti": _s(jti), "expires": _epoch(expires_at + REVOCATION_MARGIN)},
            )

    def is_active(self, session_id: str | None, jti: str, at: datetime) -> bool:
        t = self._db.tables
        request: dict[str, Any] = {
            t.revoked_tokens: {"Keys": [{"jti": _s(jti)}], "ConsistentRead": True}
        }
        if session_id is not None:
            request[t.sessions] = {"Keys": [{"id": _s(session_id)}], "ConsistentRead": True}
        with translated():
            response = self._db.client.batch_get_item(RequestItems=request)
            while response.get("UnprocessedKeys"):
                response = self._db.client.batch_get_item(
                    RequestItems=dict(response["UnprocessedKeys"])
                )
        found = response["Responses"]
        if found.get(t.revoked_tokens):
            return False
        if session_id is None:
            return True
        sessions = found.get(t.sessions, [])
        return bool(sessions) and _get_t(sessions[0], "revoked_at") is None

    def delete_all(self, user_id: str) -> None:
        sessions = self._sessions_of(user_id)
        _delete_keys(
            self._db.client, self._db.tables.sessions, [{"id": item["id"]} for item in sessions]
        )

    def _sessions_of(self, user_id: str) -> list[Item]:
        with translated():
            pages = self._db.client.get_paginator("query").paginate(
                TableName=self._db.tables.sessions,
                IndexName="by_user",
                KeyConditionExpression="user_id = :u",
                ExpressionAttributeValues={":u": _s(user_id)},
            )
            return [item for page in pages for item in page["Items"]]


def _session_item(session: Session) -> Item:
    return {
        "id": _s(session.id),
        "user_id": _s(session.user_id),
        "scope": _s(" ".join(sorted(session.scopes))),
        "created_at": _t(session.created_at),
        "revoked_at": _t(session.revoked_at),
    }


def _session(item: Item) -> Session:
    return Session(
        id=item["id"]["S"],
        user_id=item["user_id"]["S"],
        scopes=frozenset(item["scope"]["S"].split()),
        created_at=_req_t(item, "created_at"),
        revoked_at=_get_t(item, "revoked_at"),
    )


def _token_item(token: RefreshToken) -> Item:
    return {
        "id": _s(token.id),
        "session_id": _s(token.session_id),
        "secret_hash": _s(token.secret_hash),
        "created_at": _t(token.created_at),
        "expires_at": _t(token.expires_at),
        "used_at": _t(token.used_at),
        "expires": _epoch(token.expires_at),
    }


def _token(item: Item) -> RefreshToken:
    return RefreshToken(
        id=item["id"]["S"],
        session_id=item["session_id"]["S"],
        secret_hash=item["secret_hash"]["S"],
        created_at=_req_t(item, "created_at"),
        expires_at=_req_t(item, "expires_at"),
        used_at=_get_t(item, "used_at"),
    )


class DynamoRateLimitStore:
    def __init__(self, db: DynamoStorage) -> None:
        self._db = db

    def hit(self, key: str, window_seconds: int, at: datetime) -> tuple[int, datetime]:
        cutoff = at - timedelta(seconds=window_seconds)
        table = self._db.tables.rate_limits
        with translated():
            for _ in range(5):
                # Count within the current window...
                try:
                    response = self._db.client.update_item(
                        TableName=table,
                        Key={"key": _s(key)},
                        UpdateExpression="ADD #count :one",
                        ConditionExpression="window_start > :cutoff",
                        ExpressionAttributeNames={"#count": "count"},
                        ExpressionAttributeValues={":one": _n(1), ":cutoff": _t(cutoff)},
                        ReturnValues="ALL_NEW",
                    )
                    item = response["Attributes"]
                    return int(item["count"]["N"]), _req_t(item, "window_start")
                except ClientError as exc:
                    if _code(exc) != "ConditionalCheckFailedException":
                        raise
                # ...or open a new window, unless another worker just did.
                try:
                    self._db.client.put_item(
                        TableName=table,
                        Item={
                            "key": _s(key),
                            "window_start": _t(at),
                            "count": _n(1),
                            "expires": _epoch(at + timedelta(seconds=window_seconds)),
                        },
                        ConditionExpression="attribute_not_exists(#k) OR window_start <= :cutoff",
                        ExpressionAttributeNames={"#k": "key"},
                        ExpressionAttributeValues={":cutoff": _t(cutoff)},
                    )
                    return 1, at
                except ClientError as exc:
                    if _code(exc) != "ConditionalCheckFailedException":
                        raise
        raise Unavailable("rate limit counter contended")

    def peek(self, key: str, window_seconds: int, at: datetime) -> tuple[int, datetime]:
        with translated():
            item = self._db.client.get_item(
                TableName=self._db.tables.rate_limits, Key={"key": _s(key)}, ConsistentRead=True
            ).get("Item")
        started = _get_t(item, "window_start") if item else None
        if item is None or started is None or started <= at - timedelta(seconds=window_seconds):
            return 0, at
        return int(item["count"]["N"]), started

    def clear(self, key: str) -> None:
        with translated():
            self._db.client.delete_item(TableName=self._db.tables.rate_limits, Key={"key": _s(key)})
