"""The product inventory: administrators write it, signed service calls read it."""

from collections.abc import Callable, Iterable
from itertools import islice

from nimbus.domain.ids import new_id
from nimbus.domain.paging import Page
from nimbus.domain.products import Product, ProductChanges
from nimbus.services.clock import Clock, utc_now
from nimbus.services.reads import read_only
from nimbus.storage.base import ProductStore

SEED_BATCH = 100


class ProductService:
    def __init__(self, store: ProductStore, clock: Clock = utc_now) -> None:
        self._store = store
        self._clock = clock

    def create(self, name: str, description: str, price_cents: int, stock: int) -> Product:
        product = self._new(name, description, price_cents, stock)
        self._store.add(product)
        return product

    def add_all(
        self,
        drafts: Iterable[tuple[str, str, int, int]],
        progress: Callable[[int], None] = lambda n: None,
    ) -> int:
        """Store (name, description, price_cents, stock) drafts in batches; returns how many.
        `progress` hears how many each batch added."""
        total = 0
        iterator = iter(drafts)
        while batch := [self._new(*draft) for draft in islice(iterator, SEED_BATCH)]:
            self._store.add_many(batch)
            total += len(batch)
            progress(len(batch))
        return total

    @read_only
    def get(self, product_id: str) -> Product:
        return self._store.get(product_id)

    @read_only
    def list(self, *, limit: int, cursor: str | None) -> Page[Product]:
        return self._store.list(limit=limit, cursor=cursor)

    def update(
        self, product_id: str, changes: ProductChanges, *, expected_version: int | None
    ) -> Product:
        return self._store.update(
            product_id, changes, expected_version=expected_version, at=self._clock()
        )

    def delete(self, product_id: str, *, expected_version: int | None) -> None:
        self._store.delete(product_id, expected_version=expected_version)

    def _new(self, name: str, description: str, price_cents: int, stock: int) -> Product:
        now = self._clock()
        return Product(
            id=new_id(),
            name=name,
            description=description,
            price_cents=price_cents,
            stock=stock,
            created_at=now,
            updated_at=now,
            version=1,
        )
