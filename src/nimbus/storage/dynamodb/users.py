"""Users, and their unique usernames, emails and external subjects."""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from nimbus.aws import AwsError
from nimbus.domain.errors import Conflict, NotFound, PreconditionFailed, Unavailable
from nimbus.domain.paging import Page
from nimbus.domain.users import Role, Unset, User, UserChanges, email_key, username_key
from nimbus.storage.dynamodb.items import (
    Item,
    boolean,
    cancel_reasons,
    cursor_key,
    nullable,
    number,
    page_of,
    read_boolean,
    read_required_time,
    read_string,
    read_time,
    string,
    timestamp,
    transact,
    translated,
)

if TYPE_CHECKING:
    from nimbus.storage.dynamodb import DynamoStorage


class DynamoUserStore:
    def __init__(self, db: "DynamoStorage") -> None:
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
                    "Item": {"key": string(marker), "user_id": string(user.id)},
                    "ConditionExpression": "attribute_not_exists(#k)",
                    "ExpressionAttributeNames": {"#k": "key"},
                }
            }
            for marker in markers
        ]
        with translated():
            try:
                transact(self._db.client, actions)
            except AwsError as exc:
                if exc.code != "TransactionCanceledException":
                    raise
                reasons = cancel_reasons(exc)
                taken = [m for m, r in zip(markers, reasons[1:], strict=False) if r != "None"]
                raise Conflict(_conflict_message(taken)) from exc

    def get(self, user_id: str) -> User:
        with translated():
            item = self._db.client.call(
                "GetItem",
                TableName=self._db.tables.users,
                Key={"id": string(user_id)},
                ConsistentRead=True,
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

    def other_admin_exists(self, user_id: str) -> bool:
        query: dict[str, Any] = {
            "TableName": self._db.tables.users,
            "IndexName": "by_kind",
            "KeyConditionExpression": "kind = :kind",
            # A filter may not name the index's sort key (id): that one is skipped here.
            "FilterExpression": "#role = :admin"
            " AND (attribute_not_exists(disabled_at) OR attribute_type(disabled_at, :null))",
            "ProjectionExpression": "id",
            "ExpressionAttributeNames": {"#role": "role"},
            "ExpressionAttributeValues": {
                ":kind": string("user"),
                ":admin": string("admin"),
                ":null": string("NULL"),
            },
        }
        # Paged until one is found; administrators are usually among the oldest accounts.
        with translated():
            while True:
                response = self._db.client.call("Query", **query)
                if any(item["id"]["S"] != user_id for item in response["Items"]):
                    return True
                if "LastEvaluatedKey" not in response:
                    return False
                query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def list(self, *, limit: int, cursor: str | None) -> Page[User]:
        query: dict[str, Any] = {
            "TableName": self._db.tables.users,
            "IndexName": "by_kind",
            "KeyConditionExpression": "kind = :kind",
            "ExpressionAttributeValues": {":kind": string("user")},
            "Limit": limit + 1,
        }
        start = cursor_key(cursor, frozenset({"id"}))
        if start is not None:
            query["ExclusiveStartKey"] = start | {"kind": string("user")}
        with translated():
            response = self._db.client.call("Query", **query)
        items, next_cursor = page_of(response["Items"], limit, "id")
        return Page([_user(item) for item in items], next_cursor)

    def record_login(self, user_id: str, at: datetime, password_hash: str | None) -> None:
        expression = "SET last_login = :at"
        values: dict[str, Any] = {":at": timestamp(at)}
        if password_hash is not None:
            expression += ", password_hash = :hash"
            values[":hash"] = string(password_hash)
        with translated():
            try:
                self._db.client.call(
                    "UpdateItem",
                    TableName=self._db.tables.users,
                    Key={"id": string(user_id)},
                    UpdateExpression=expression,
                    ConditionExpression="attribute_exists(id)",
                    ExpressionAttributeValues=values,
                )
            except AwsError as exc:
                if exc.code != "ConditionalCheckFailedException":
                    raise

    def update(
        self, user_id: str, changes: UserChanges, *, expected_version: int | None, at: datetime
    ) -> User:
        # Read, then write on condition that the version read is still current; without an
        # If-Match from the caller, a lost race is simply tried again.
        for _ in range(5):
            try:
                return self._update_once(user_id, changes, expected_version, at)
            except _VersionMoved as moved:
                if expected_version is not None:
                    raise PreconditionFailed() from moved
        raise Unavailable("the user record is changing too fast to update")

    def _update_once(
        self, user_id: str, changes: UserChanges, expected_version: int | None, at: datetime
    ) -> User:
        current = self.get(user_id)
        if expected_version is not None and current.version != expected_version:
            raise PreconditionFailed()
        t = self._db.tables
        sets = ["updated_at = :at", "version = version + :one"]
        values: dict[str, Any] = {
            ":at": timestamp(at),
            ":one": number(1),
            ":v": number(current.version),
        }
        names: dict[str, str] = {}
        actions: Any = []
        if not isinstance(changes.email, Unset) and changes.email != current.email:
            sets.append("email = :email")
            values[":email"] = nullable(changes.email)
            if changes.email:
                actions.append(_claim(t.user_keys, f"email#{email_key(changes.email)}", user_id))
            if current.email:
                actions.append(_release(t.user_keys, f"email#{email_key(current.email)}", user_id))
        if not isinstance(changes.name, Unset):
            sets.append("#name = :name")
            values[":name"] = nullable(changes.name)
            names["#name"] = "name"
        if not isinstance(changes.role, Unset):
            sets.append("#role = :role")
            values[":role"] = string(changes.role.value)
            names["#role"] = "role"
        if not isinstance(changes.password_hash, Unset):
            sets.append("password_hash = :hash")
            values[":hash"] = string(changes.password_hash)
        if not isinstance(changes.email_verified, Unset):
            sets.append("email_verified = :verified")
            values[":verified"] = boolean(changes.email_verified)
        if not isinstance(changes.disabled_at, Unset):
            sets.append("disabled_at = :disabled")
            values[":disabled"] = timestamp(changes.disabled_at)
        # The version read above must still be current: that makes the whole change atomic.
        update: dict[str, Any] = {
            "TableName": t.users,
            "Key": {"id": string(user_id)},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": "version = :v",
            "ExpressionAttributeValues": values,
        }
        if names:
            update["ExpressionAttributeNames"] = names
        with translated():
            try:
                transact(self._db.client, [{"Update": update}, *actions])
            except AwsError as exc:
                if exc.code != "TransactionCanceledException":
                    raise
                reasons = cancel_reasons(exc)
                if any(reason != "None" for reason in reasons[1:]):
                    raise Conflict("That email is already registered") from exc
                raise _VersionMoved() from exc
        return self.get(user_id)

    def delete(self, user_id: str) -> None:
        user = self.get(user_id)
        t = self._db.tables
        actions: Any = [
            {
                "Delete": {
                    "TableName": t.users,
                    "Key": {"id": string(user_id)},
                    "ConditionExpression": "attribute_exists(id)",
                }
            }
        ]
        actions += [
            {"Delete": {"TableName": t.user_keys, "Key": {"key": string(marker)}}}
            for marker in self._markers(user)
        ]
        with translated():
            try:
                transact(self._db.client, actions)
            except AwsError as exc:
                if exc.code == "TransactionCanceledException":
                    raise NotFound("User not found") from exc
                raise
        # The user is gone, so no new todo, message, session or factor can be written for it
        # (each checks that its owner exists); sweep what was there.
        self._db.todos.delete_all(user_id)
        self._db.messages.delete_by_author(user_id)
        self._db.sessions.delete_all(user_id)
        self._db.factors.remove(user_id)
        self._db.passkeys.delete_all(user_id)

    def _markers(self, user: User) -> tuple[str, ...]:
        markers: tuple[str, ...] = (f"username#{username_key(user.username)}",)
        if user.email:
            markers += (f"email#{email_key(user.email)}",)
        if user.external_subject:
            markers += (f"subject#{user.external_subject}",)
        return markers

    def _by_marker(self, marker: str) -> User | None:
        with translated():
            item = self._db.client.call(
                "GetItem",
                TableName=self._db.tables.user_keys,
                Key={"key": string(marker)},
                ConsistentRead=True,
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
            "Item": {"key": string(key), "user_id": string(user_id)},
            "ConditionExpression": "attribute_not_exists(#k)",
            "ExpressionAttributeNames": {"#k": "key"},
        }
    }


def _release(table: str, key: str, user_id: str) -> dict[str, Any]:
    return {
        "Delete": {
            "TableName": table,
            "Key": {"key": string(key)},
            "ConditionExpression": "user_id = :owner",
            "ExpressionAttributeValues": {":owner": string(user_id)},
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
        "id": string(user.id),
        "kind": string("user"),
        "username": string(user.username),
        "email": nullable(user.email),
        "name": nullable(user.name),
        "role": string(user.role.value),
        "password_hash": string(user.password_hash),
        "created_at": timestamp(user.created_at),
        "updated_at": timestamp(user.updated_at),
        "last_login": timestamp(user.last_login),
        "version": number(user.version),
        "external_subject": nullable(user.external_subject),
        "email_verified": boolean(user.email_verified),
        "disabled_at": timestamp(user.disabled_at),
    }


def _user(item: Item) -> User:
    return User(
        id=item["id"]["S"],
        username=item["username"]["S"],
        email=read_string(item, "email"),
        name=read_string(item, "name"),
        role=Role(item["role"]["S"]),
        password_hash=item["password_hash"]["S"],
        created_at=read_required_time(item, "created_at"),
        updated_at=read_required_time(item, "updated_at"),
        last_login=read_time(item, "last_login"),
        version=int(item["version"]["N"]),
        external_subject=read_string(item, "external_subject"),
        # Absent from the items written before accounts management: False and None.
        email_verified=read_boolean(item, "email_verified"),
        disabled_at=read_time(item, "disabled_at"),
    )
