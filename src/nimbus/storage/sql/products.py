from collections.abc import Sequence
from datetime import datetime
from typing import Any, NoReturn

from nimbus.domain.errors import NotFound, PreconditionFailed
from nimbus.domain.paging import Page, decode_cursor
from nimbus.domain.products import Product, ProductChanges
from nimbus.storage.sql.base import Connection, Database, Row, page, required

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
        sql = (
            "UPDATE products SET name = COALESCE(?, name),"
            " description = COALESCE(?, description), price_cents = COALESCE(?, price_cents),"
            " stock = COALESCE(?, stock), updated_at = ?, version = version + 1 WHERE id = ?"
        )
        params: list[Any] = [
            changes.name,
            changes.description,
            changes.price_cents,
            changes.stock,
            self._db.time(at),
            product_id,
        ]
        if expected_version is not None:
            sql += " AND version = ?"
            params.append(expected_version)
        with self._db.transaction() as conn:
            row = conn.execute(sql + " RETURNING *", params).fetchone()
        if row is None:
            self._explain_miss(product_id)
        return self._product(row)

    def delete(self, product_id: str, *, expected_version: int | None) -> None:
        sql = "DELETE FROM products WHERE id = ?"
        params: list[Any] = [product_id]
        if expected_version is not None:
            sql += " AND version = ?"
            params.append(expected_version)
        with self._db.transaction() as conn:
            deleted = conn.execute(sql, params).rowcount
        if not deleted:
            self._explain_miss(product_id)

    def _explain_miss(self, product_id: str) -> NoReturn:
        self.get(product_id)
        raise PreconditionFailed()

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
