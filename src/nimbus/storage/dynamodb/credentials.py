"""Service credentials: keyed by access key id; few enough to list with a Scan."""

from datetime import datetime
from typing import TYPE_CHECKING

from nimbus.aws import AwsError
from nimbus.domain.credentials import ServiceCredential
from nimbus.domain.errors import Conflict, NotFound
from nimbus.storage.dynamodb.items import (
    Item,
    read_required_time,
    read_time,
    string,
    timestamp,
    translated,
)

if TYPE_CHECKING:
    from nimbus.storage.dynamodb import DynamoStorage


class DynamoCredentialStore:
    def __init__(self, db: "DynamoStorage") -> None:
        self._db = db

    def add(self, credential: ServiceCredential) -> None:
        with translated():
            try:
                self._db.client.call(
                    "PutItem",
                    TableName=self._db.tables.service_credentials,
                    Item=_credential_item(credential),
                    ConditionExpression="attribute_not_exists(access_key_id)",
                )
            except AwsError as exc:
                if exc.code == "ConditionalCheckFailedException":
                    raise Conflict("The access key already exists") from exc
                raise

    def get(self, access_key_id: str) -> ServiceCredential | None:
        with translated():
            item = self._db.client.call(
                "GetItem",
                TableName=self._db.tables.service_credentials,
                Key={"access_key_id": string(access_key_id)},
                ConsistentRead=True,
            ).get("Item")
        return _credential(item) if item is not None else None

    def list(self) -> list[ServiceCredential]:
        with translated():
            pages = self._db.client.pages(
                "Scan", TableName=self._db.tables.service_credentials, ConsistentRead=True
            )
            credentials = [_credential(item) for page in pages for item in page["Items"]]
        return sorted(credentials, key=lambda c: (c.created_at, c.access_key_id))

    def revoke(self, access_key_id: str, at: datetime) -> ServiceCredential:
        with translated():
            try:
                response = self._db.client.call(
                    "UpdateItem",
                    TableName=self._db.tables.service_credentials,
                    Key={"access_key_id": string(access_key_id)},
                    UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :at)",
                    ConditionExpression="attribute_exists(access_key_id)",
                    ExpressionAttributeValues={":at": timestamp(at)},
                    ReturnValues="ALL_NEW",
                )
            except AwsError as exc:
                if exc.code == "ConditionalCheckFailedException":
                    raise NotFound("Credential not found") from exc
                raise
        return _credential(response["Attributes"])


def _credential_item(credential: ServiceCredential) -> Item:
    item: Item = {
        "access_key_id": string(credential.access_key_id),
        "name": string(credential.name),
        "sealed_secret": string(credential.sealed_secret),
        "created_at": timestamp(credential.created_at),
    }
    # Absent rather than NULL while active: revoke's if_not_exists counts a NULL as a value.
    if credential.revoked_at is not None:
        item["revoked_at"] = timestamp(credential.revoked_at)
    return item


def _credential(item: Item) -> ServiceCredential:
    return ServiceCredential(
        access_key_id=item["access_key_id"]["S"],
        name=item["name"]["S"],
        sealed_secret=item["sealed_secret"]["S"],
        created_at=read_required_time(item, "created_at"),
        revoked_at=read_time(item, "revoked_at"),
    )
