"""Signing keys: keyed by kid; few (one per rotation), so listed with a Scan."""

from typing import TYPE_CHECKING

from nimbus.aws import AwsError
from nimbus.domain.errors import Conflict
from nimbus.domain.signing_keys import SigningKey
from nimbus.storage.dynamodb.items import Item, read_required_time, string, timestamp, translated

if TYPE_CHECKING:
    from nimbus.storage.dynamodb import DynamoStorage


class DynamoSigningKeyStore:
    def __init__(self, db: "DynamoStorage") -> None:
        self._db = db

    def add(self, key: SigningKey) -> None:
        item: Item = {
            "kid": string(key.kid),
            "sealed_key": string(key.sealed_key),
            "created_at": timestamp(key.created_at),
        }
        with translated():
            try:
                self._db.client.call(
                    "PutItem",
                    TableName=self._db.tables.signing_keys,
                    Item=item,
                    ConditionExpression="attribute_not_exists(kid)",
                )
            except AwsError as exc:
                if exc.code == "ConditionalCheckFailedException":
                    raise Conflict("The signing key already exists") from exc
                raise

    def list(self) -> list[SigningKey]:
        with translated():
            pages = self._db.client.pages(
                "Scan", TableName=self._db.tables.signing_keys, ConsistentRead=True
            )
            keys = [_key(item) for page in pages for item in page["Items"]]
        return sorted(keys, key=lambda k: (k.created_at, k.kid))


def _key(item: Item) -> SigningKey:
    return SigningKey(
        kid=item["kid"]["S"],
        sealed_key=item["sealed_key"]["S"],
        created_at=read_required_time(item, "created_at"),
    )
