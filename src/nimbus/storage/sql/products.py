from collections.abc import Sequence
from datetime import datetime
from typing import Any

from nimbus.domain.errors import NotFound
from nimbus.domain.paging import Page, decode_cursor
from nimbus.domain.products import Product, ProductChanges
from nimbus.storage.sql.base import (
    Connection,
    Database,
    Row,
    page,
    required,
    versioned_delete,
    versioned_update,
)

COLUMNS = "id, name, description, price_cents, stock, created_at, updated_at, version"


class SqlProductStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, product: Product) -> None:
        with self._db.transaction() as conn:
            self._insert(conn, product)

    def add_many(self, products: Sequence[Product]) -> None:
        with self._db.transaction() as conn:
            for product in products:
                self._insert(conn, product)

    def get(self, product_id: str) -> Product:
        row = self._db.query_one("SELECT * FROM products WHERE id = ?", (product_id,))
        if row is None:
            raise NotFound("Product not found")
        return self._product(row)

    def list(self, *, limit: int, cursor: str | None) -> Page[Product]:
        sql, params = "SELECT * FROM products", list[Any]()
        if cursor:
            sql += " WHERE id > ?"
            params.append(decode_cursor(cursor, frozenset({"id"}))["id"])
        sql += " ORDER BY id LIMIT ?"
        params.append(limit + 1)
        rows = self._db.query(sql, params)
        return page(rows, limit, self._product, "id")

    def update(
        self,
        product_id: str,
        changes: ProductChanges,
        *,
        expected_version: int | None,
        at: datetime,
    ) -> Product:
        columns = [
            ("name", changes.name),
            ("description", changes.description),
            ("price_cents", changes.price_cents),
            ("stock", changes.stock),
        ]
        row = versioned_update(
            self._db,
            "products",
            [(column, value) for column, value in columns if value is not None],
            [("id", product_id)],
            expected_version=expected_version,
            at=at,
            look_up=lambda: self.get(product_id),
        )
        return self._product(row)

    def delete(self, product_id: str, *, expected_version: int | None) -> None:
        versioned_delete(
            self._db,
            "products",
            [("id", product_id)],
            expected_version=expected_version,
            look_up=lambda: self.get(product_id),
        )

    def _insert(self, conn: Connection, product: Product) -> None:
        db = self._db
        conn.execute(
            f"INSERT INTO products ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (
                product.id,
                product.name,
                product.description,
                product.price_cents,
                product.stock,
                db.time(product.created_at),
                db.time(product.updated_at),
                product.version,
            ),
        )

    def _product(self, row: Row) -> Product:
        when = self._db.read_time
        return Product(
            id=row["id"],
            name=row["name"],
            description=row["description"],
            price_cents=row["price_cents"],
            stock=row["stock"],
            created_at=required(when(row["created_at"])),
            updated_at=required(when(row["updated_at"])),
            version=row["version"],
        )
