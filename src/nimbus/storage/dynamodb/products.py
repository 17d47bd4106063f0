"""Products: keyed by UUIDv7 id, listed oldest first through a one-partition kind index."""

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nimbus.aws import AwsError
from nimbus.domain.errors import Conflict, NotFound
from nimbus.domain.paging import Page
from nimbus.domain.products import Product, ProductChanges
from nimbus.storage.dynamodb.items import (
    Item,
    cursor_key,
    number,
    page_of,
    put_items,
    read_required_time,
    string,
    timestamp,
    translated,
    versioned_write,
)

if TYPE_CHECKING:
    from nimbus.storage.dynamodb import DynamoStorage

KIND = "product"


class DynamoProductStore:
    def __init__(self, db: "DynamoStorage") -> None:
        self._db = db

    def add(self, product: Product) -> None:
        with translated():
            try:
                self._db.client.call(
                    "PutItem",
                    TableName=self._db.tables.products,
                    Item=_product_item(product),
                    ConditionExpression="attribute_not_exists(id)",
                )
            except AwsError as exc:
                if exc.code == "ConditionalCheckFailedException":
                    raise Conflict("The product already exists") from exc
                raise

    def add_many(self, products: Sequence[Product]) -> None:
        # BatchWriteItem takes no conditions: the ids are new UUIDs, so nothing is overwritten.
        with translated():
            put_items(
                self._db.client, self._db.tables.products, [_product_item(p) for p in products]
            )

    def get(self, product_id: str) -> Product:
        with translated():
            item = self._db.client.call(
                "GetItem",
                TableName=self._db.tables.products,
                Key={"id": string(product_id)},
                ConsistentRead=True,
            ).get("Item")
        if item is None:
            raise NotFound("Product not found")
        return _product(item)

    def list(self, *, limit: int, cursor: str | None) -> Page[Product]:
        query: dict[str, Any] = {
            "TableName": self._db.tables.products,
            "IndexName": "by_kind",
            "KeyConditionExpression": "kind = :kind",
            "ExpressionAttributeValues": {":kind": string(KIND)},
            "Limit": limit + 1,
        }
        start = cursor_key(cursor, frozenset({"id"}))
        if start is not None:
            query["ExclusiveStartKey"] = start | {"kind": string(KIND)}
        with translated():
            response = self._db.client.call("Query", **query)
        items, next_cursor = page_of(response["Items"], limit, "id")
        return Page([_product(item) for item in items], next_cursor)

    def update(
        self,
        product_id: str,
        changes: ProductChanges,
        *,
        expected_version: int | None,
        at: datetime,
    ) -> Product:
        sets = ["updated_at = :at", "version = version + :one"]
        values: dict[str, Any] = {":at": timestamp(at), ":one": number(1)}
        names: dict[str, str] = {}
        if changes.name is not None:
            sets.append("#name = :name")  # NAME is a DynamoDB reserved word
            names["#name"] = "name"
            values[":name"] = string(changes.name)
        if changes.description is not None:
            sets.append("description = :d")
            values[":d"] = string(changes.description)
        if changes.price_cents is not None:
            sets.append("price_cents = :p")
            values[":p"] = number(changes.price_cents)
        if changes.stock is not None:
            sets.append("stock = :s")
            values[":s"] = number(changes.stock)
        request: dict[str, Any] = {
            "TableName": self._db.tables.products,
            "Key": {"id": string(product_id)},
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
            exists="id",
            expected_version=expected_version,
            not_found="Product not found",
        )
        return _product(response["Attributes"])

    def delete(self, product_id: str, *, expected_version: int | None) -> None:
        versioned_write(
            self._db.client,
            "DeleteItem",
            {"TableName": self._db.tables.products, "Key": {"id": string(product_id)}},
            exists="id",
            expected_version=expected_version,
            not_found="Product not found",
        )


def _product_item(product: Product) -> Item:
    return {
        "id": string(product.id),
        "kind": string(KIND),
        "name": string(product.name),
        "description": string(product.description),
        "price_cents": number(product.price_cents),
        "stock": number(product.stock),
        "created_at": timestamp(product.created_at),
        "updated_at": timestamp(product.updated_at),
        "version": number(product.version),
    }


def _product(item: Item) -> Product:
    return Product(
        id=item["id"]["S"],
        name=item["name"]["S"],
        description=item["description"]["S"],
        price_cents=int(item["price_cents"]["N"]),
        stock=int(item["stock"]["N"]),
        created_at=read_required_time(item, "created_at"),
        updated_at=read_required_time(item, "updated_at"),
        version=int(item["version"]["N"]),
    )
