"""Passkeys: one item per WebAuthn credential, keyed by its credential id, with a GSI
`by_user` (user_id, credential_id) for an account's list."""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from nimbus.aws import AwsError
from nimbus.domain.errors import Conflict
from nimbus.domain.passkeys import Passkey
from nimbus.storage.dynamodb.items import (
    Item,
    cancel_reasons,
    delete_keys,
    number,
    owner_exists,
    read_required_time,
    read_time,
    string,
    timestamp,
    transact_for_owner,
    translated,
)

if TYPE_CHECKING:
    from nimbus.storage.dynamodb import DynamoStorage

TAKEN = "This passkey is registered already"


class DynamoPasskeyStore:
    def __init__(self, db: "DynamoStorage") -> None:
        self._db = db

    def add(self, passkey: Passkey) -> None:
        t = self._db.tables
        item: Item = {
            "credential_id": string(passkey.credential_id),
            "user_id": string(passkey.user_id),
            "public_key": string(passkey.public_key),
            "sign_count": number(passkey.sign_count),
            "name": string(passkey.name),
            "created_at": timestamp(passkey.created_at),
            "last_used_at": timestamp(passkey.last_used_at),
        }
        if passkey.transports:
            item["transports"] = {"L": [string(t) for t in passkey.transports]}
        put = {
            "Put": {
                "TableName": t.passkeys,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(credential_id)",
            }
        }
        with translated():
            try:
                transact_for_owner(
                    self._db.client,
                    owner_exists(t.users, passkey.user_id),
                    [put],
                    owner_gone="The owner no longer exists",
                )
            except AwsError as exc:
                if exc.code == "TransactionCanceledException" and cancel_reasons(exc)[1:2] == [
                    "ConditionalCheckFailed"
                ]:
                    raise Conflict(TAKEN, code="passkey_registered") from exc
                raise

    def list_for(self, user_id: str) -> list[Passkey]:
        passkeys = [_passkey(item) for item in self._items_of(user_id)]
        return sorted(passkeys, key=lambda p: (p.created_at, p.credential_id))

    def get(self, credential_id: str) -> Passkey | None:
        with translated():
            item = self._db.client.call(
                "GetItem",
                TableName=self._db.tables.passkeys,
                Key={"credential_id": string(credential_id)},
                ConsistentRead=True,
            ).get("Item")
        return _passkey(item) if item is not None else None

    def record_use(self, credential_id: str, sign_count: int, at: datetime) -> bool:
        # A missing item has no sign_count, so the condition fails and nothing is written.
        return self._conditional(
            "UpdateItem",
            Key={"credential_id": string(credential_id)},
            UpdateExpression="SET sign_count = :n, last_used_at = :at",
            ConditionExpression="sign_count < :n OR (sign_count = :zero AND :n = :zero)",
            ExpressionAttributeValues={
                ":n": number(sign_count),
                ":at": timestamp(at),
                ":zero": number(0),
            },
        )

    def remove(self, user_id: str, credential_id: str) -> bool:
        return self._conditional(
            "DeleteItem",
            Key={"credential_id": string(credential_id)},
            ConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": string(user_id)},
        )

    def delete_all(self, user_id: str) -> None:
        """Remove a deleted user's passkeys."""
        keys = [{"credential_id": item["credential_id"]} for item in self._items_of(user_id)]
        with translated():
            delete_keys(self._db.client, self._db.tables.passkeys, keys)

    def _items_of(self, user_id: str) -> list[Item]:
        """A user's passkeys from the index by_user: eventually consistent, as every read of
        an index is."""
        with translated():
            pages = self._db.client.pages(
                "Query",
                TableName=self._db.tables.passkeys,
                IndexName="by_user",
                KeyConditionExpression="user_id = :u",
                ExpressionAttributeValues={":u": string(user_id)},
            )
            return [item for page in pages for item in page["Items"]]

    def _conditional(self, operation: str, **request: Any) -> bool:
        """One conditional write; False if its condition failed."""
        with translated():
            try:
                self._db.client.call(operation, TableName=self._db.tables.passkeys, **request)
            except AwsError as exc:
                if exc.code == "ConditionalCheckFailedException":
                    return False
                raise
        return True


def _passkey(item: Item) -> Passkey:
    return Passkey(
        credential_id=item["credential_id"]["S"],
        user_id=item["user_id"]["S"],
        public_key=item["public_key"]["S"],
        sign_count=int(item["sign_count"]["N"]),
        transports=tuple(t["S"] for t in item.get("transports", {}).get("L", [])),
        name=item["name"]["S"],
        created_at=read_required_time(item, "created_at"),
        last_used_at=read_time(item, "last_used_at"),
    )
