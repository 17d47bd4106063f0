"""Sessions, refresh tokens, revoked access tokens and login rate limits."""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from nimbus.aws import AwsError
from nimbus.domain.errors import Unavailable
from nimbus.domain.sessions import RefreshToken, Session
from nimbus.storage.dynamodb.items import (
    Item,
    delete_keys,
    epoch,
    nullable,
    number,
    owner_exists,
    read_batch,
    read_required_time,
    read_string,
    read_time,
    string,
    timestamp,
    transact,
    transact_for_owner,
    translated,
)

if TYPE_CHECKING:
    from nimbus.storage.dynamodb import DynamoStorage


REVOCATION_MARGIN = timedelta(hours=1)


class DynamoSessionStore:
    def __init__(self, db: "DynamoStorage") -> None:
        self._db = db

    def start(self, session: Session, token: RefreshToken) -> None:
        t = self._db.tables
        with translated():
            transact_for_owner(
                self._db.client,
                owner_exists(t.users, session.user_id),
                [
                    {"Put": {"TableName": t.sessions, "Item": _session_item(session)}},
                    {"Put": {"TableName": t.refresh_tokens, "Item": _token_item(token)}},
                ],
                owner_gone="The owner no longer exists",
            )

    def find_refresh(self, token_id: str) -> tuple[RefreshToken, Session] | None:
        t = self._db.tables
        with translated():
            token_item = self._db.client.call(
                "GetItem",
                TableName=t.refresh_tokens,
                Key={"id": string(token_id)},
                ConsistentRead=True,
            ).get("Item")
            if token_item is None:
                return None
            session_item = self._db.client.call(
                "GetItem",
                TableName=t.sessions,
                Key={"id": token_item["session_id"]},
                ConsistentRead=True,
            ).get("Item")
        if session_item is None:
            return None
        return _token(token_item), _session(session_item)

    def rotate(self, used_id: str, replacement: RefreshToken, at: datetime) -> bool:
        t = self._db.tables
        with translated():
            try:
                transact(
                    self._db.client,
                    [
                        {
                            "Update": {
                                "TableName": t.refresh_tokens,
                                "Key": {"id": string(used_id)},
                                "UpdateExpression": "SET used_at = :at",
                                "ConditionExpression": "attribute_type(used_at, :null)",
                                "ExpressionAttributeValues": {
                                    ":at": timestamp(at),
                                    ":null": string("NULL"),
                                },
                            }
                        },
                        {
                            # Only while the session is live (a missing one fails too).
                            "Update": {
                                "TableName": t.sessions,
                                "Key": {"id": string(replacement.session_id)},
                                "UpdateExpression": "SET last_used_at = :at",
                                "ConditionExpression": "attribute_type(revoked_at, :null)",
                                "ExpressionAttributeValues": {
                                    ":at": timestamp(at),
                                    ":null": string("NULL"),
                                },
                            }
                        },
                        {"Put": {"TableName": t.refresh_tokens, "Item": _token_item(replacement)}},
                    ],
                )
            except AwsError as exc:
                if exc.code == "TransactionCanceledException":
                    return False
                raise
        return True

    def revoke(self, session_id: str, at: datetime) -> None:
        with translated():
            try:
                self._db.client.call(
                    "UpdateItem",
                    TableName=self._db.tables.sessions,
                    Key={"id": string(session_id)},
                    UpdateExpression="SET revoked_at = :at",
                    ConditionExpression="attribute_type(revoked_at, :null)",
                    ExpressionAttributeValues={":at": timestamp(at), ":null": string("NULL")},
                )
            except AwsError as exc:
                if exc.code != "ConditionalCheckFailedException":
                    raise

    def revoke_all(self, user_id: str, at: datetime, *, keep: str | None = None) -> None:
        for item in self._sessions_of(user_id, live=True):
            if item["id"]["S"] != keep:
                self.revoke(item["id"]["S"], at)

    def list_active(self, user_id: str) -> list[Session]:
        sessions = [_session(item) for item in self._sessions_of(user_id, live=True)]
        sessions.sort(key=lambda s: (s.last_used_at or s.created_at, s.id), reverse=True)
        return sessions

    def revoke_access_token(self, jti: str, expires_at: datetime, at: datetime) -> None:
        with translated():
            self._db.client.call(
                "PutItem",
                TableName=self._db.tables.revoked_tokens,
                Item={"jti": string(jti), "expires": epoch(expires_at + REVOCATION_MARGIN)},
            )

    def is_active(self, session_id: str | None, jti: str, at: datetime) -> bool:
        t = self._db.tables
        request: dict[str, Any] = {
            t.revoked_tokens: {"Keys": [{"jti": string(jti)}], "ConsistentRead": True}
        }
        if session_id is not None:
            request[t.sessions] = {"Keys": [{"id": string(session_id)}], "ConsistentRead": True}
        with translated():
            found = read_batch(self._db.client, request)
        if found.get(t.revoked_tokens):
            return False
        if session_id is None:
            return True
        sessions = found.get(t.sessions, [])
        return bool(sessions) and read_time(sessions[0], "revoked_at") is None

    def delete_all(self, user_id: str) -> None:
        keys = [{"id": item["id"]} for item in self._sessions_of(user_id)]
        with translated():
            delete_keys(self._db.client, self._db.tables.sessions, keys)

    def _sessions_of(self, user_id: str, *, live: bool = False) -> list[Item]:
        """A user's sessions (only those not revoked when `live`), from the index by_user:
        one query, eventually consistent as every read of an index is."""
        query: dict[str, Any] = {
            "TableName": self._db.tables.sessions,
            "IndexName": "by_user",
            "KeyConditionExpression": "user_id = :u",
            "ExpressionAttributeValues": {":u": string(user_id)},
        }
        if live:
            # Read and paid for all the same, but the revoked ones are not sent back.
            query["FilterExpression"] = "attribute_type(revoked_at, :null)"
            query["ExpressionAttributeValues"][":null"] = string("NULL")
        with translated():
            pages = self._db.client.pages("Query", **query)
            return [item for page in pages for item in page["Items"]]


def _session_item(session: Session) -> Item:
    return {
        "id": string(session.id),
        "user_id": string(session.user_id),
        "scope": string(" ".join(sorted(session.scopes))),
        "created_at": timestamp(session.created_at),
        "revoked_at": timestamp(session.revoked_at),
        "user_agent": nullable(session.user_agent),
        "address": nullable(session.address),
        "last_used_at": timestamp(session.last_used_at),
    }


def _session(item: Item) -> Session:
    return Session(
        id=item["id"]["S"],
        user_id=item["user_id"]["S"],
        scopes=frozenset(item["scope"]["S"].split()),
        created_at=read_required_time(item, "created_at"),
        revoked_at=read_time(item, "revoked_at"),
        # Absent from the items written before accounts management: None.
        user_agent=read_string(item, "user_agent"),
        address=read_string(item, "address"),
        last_used_at=read_time(item, "last_used_at"),
    )


def _token_item(token: RefreshToken) -> Item:
    return {
        "id": string(token.id),
        "session_id": string(token.session_id),
        "secret_hash": string(token.secret_hash),
        "created_at": timestamp(token.created_at),
        "expires_at": timestamp(token.expires_at),
        "used_at": timestamp(token.used_at),
        "expires": epoch(token.expires_at),
    }


def _token(item: Item) -> RefreshToken:
    return RefreshToken(
        id=item["id"]["S"],
        session_id=item["session_id"]["S"],
        secret_hash=item["secret_hash"]["S"],
        created_at=read_required_time(item, "created_at"),
        expires_at=read_required_time(item, "expires_at"),
        used_at=read_time(item, "used_at"),
    )


class DynamoRateLimitStore:
    def __init__(self, db: "DynamoStorage") -> None:
        self._db = db

    def take(self, key: str, limit: int, window_seconds: int, at: datetime) -> datetime | None:
        cutoff = at - timedelta(seconds=window_seconds)
        table = self._db.tables.rate_limits
        with translated():
            for _ in range(5):
                # One more in the current window while there is room...
                try:
                    self._db.client.call(
                        "UpdateItem",
                        TableName=table,
                        Key={"key": string(key)},
                        UpdateExpression="ADD #count :one",
                        ConditionExpression="window_start > :cutoff AND #count < :limit",
                        ExpressionAttributeNames={"#count": "count"},
                        ExpressionAttributeValues={
                            ":one": number(1),
                            ":cutoff": timestamp(cutoff),
                            ":limit": number(limit),
                        },
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
                    return None
                except AwsError as exc:
                    if exc.code != "ConditionalCheckFailedException":
                        raise
                    found = exc.body.get("Item")
                started = read_time(found, "window_start") if found else None
                if started is not None and started > cutoff:
                    return started  # the current window is full
                # ...or open a new window, unless another worker just did.
                try:
                    self._db.client.call(
                        "PutItem",
                        TableName=table,
                        Item={
                            "key": string(key),
                            "window_start": timestamp(at),
                            "count": number(1),
                            "expires": epoch(at + timedelta(seconds=window_seconds)),
                        },
                        ConditionExpression="attribute_not_exists(#k) OR window_start <= :cutoff",
                        ExpressionAttributeNames={"#k": "key"},
                        ExpressionAttributeValues={":cutoff": timestamp(cutoff)},
                    )
                    return None
                except AwsError as exc:
                    if exc.code != "ConditionalCheckFailedException":
                        raise
        raise Unavailable("rate limit counter contended")

    def give_back(self, key: str) -> None:
        with translated():
            try:
                self._db.client.call(
                    "UpdateItem",
                    TableName=self._db.tables.rate_limits,
                    Key={"key": string(key)},
                    UpdateExpression="ADD #count :minus",
                    ConditionExpression="#count > :zero",
                    ExpressionAttributeNames={"#count": "count"},
                    ExpressionAttributeValues={":minus": number(-1), ":zero": number(0)},
                )
            except AwsError as exc:
                if exc.code != "ConditionalCheckFailedException":
                    raise

    def clear(self, key: str) -> None:
        with translated():
            self._db.client.call(
                "DeleteItem", TableName=self._db.tables.rate_limits, Key={"key": string(key)}
            )
