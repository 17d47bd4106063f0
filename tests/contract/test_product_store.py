from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from nimbus.domain.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from nimbus.domain.products import PRICE_MAX_CENTS, STOCK_MAX, Product, ProductChanges
from nimbus.storage.base import Storage
from tests.factories import NOW, a_product

LATER = NOW + timedelta(minutes=5)


def every_product(storage: Storage, limit: int) -> list[Product]:
    seen: list[Product] = []
    cursor = None
    while True:
        page = storage.products.list(limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        seen += page.items
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_a_stored_product_reads_back_field_for_field(storage: Storage) -> None:
    product = a_product(
        name="Crème brûlée ☕", description="  Ünïcode\nand spaces  ", price_cents=0, stock=0
    )
    storage.products.add(product)
    assert storage.products.get(product.id) == product


def test_the_largest_amounts_come_back_as_exact_integers(storage: Storage) -> None:
    product = a_product(price_cents=PRICE_MAX_CENTS, stock=STOCK_MAX)
    storage.products.add(product)
    back = storage.products.get(product.id)
    assert (back.price_cents, back.stock) == (PRICE_MAX_CENTS, STOCK_MAX)
    assert isinstance(back.price_cents, int)
    assert isinstance(back.stock, int)


def test_an_unknown_id_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound):
        storage.products.get("no-such-id")


def test_add_does_not_overwrite_a_product(storage: Storage) -> None:
    product = a_product()
    storage.products.add(product)
    with pytest.raises(Conflict):
        storage.products.add(a_product(id=product.id, name="Impostor"))
    assert storage.products.get(product.id) == product


def test_list_is_oldest_first_and_paged(storage: Storage) -> None:
    made = [a_product(name=f"p{i}") for i in range(5)]
    for product in made:
        storage.products.add(product)
    first = storage.products.list(limit=2, cursor=None)
    assert list(first.items) == made[:2]
    assert first.next_cursor is not None
    second = storage.products.list(limit=2, cursor=first.next_cursor)
    assert list(second.items) == made[2:4]
    last = storage.products.list(limit=2, cursor=second.next_cursor)
    assert list(last.items) == made[4:]
    assert last.next_cursor is None


def test_a_full_last_page_has_no_next_cursor(storage: Storage) -> None:
    for _ in range(2):
        storage.products.add(a_product())
    page = storage.products.list(limit=2, cursor=None)
    assert len(page.items) == 2
    assert page.next_cursor is None


def test_list_refuses_a_cursor_it_did_not_make(storage: Storage) -> None:
    with pytest.raises(InvalidInput):
        storage.products.list(limit=5, cursor="not-a-cursor")


def test_add_many_stores_them_all_in_id_order(storage: Storage) -> None:
    made = [a_product(name=f"bulk {i}", stock=i) for i in range(60)]
    storage.products.add_many(made)
    assert every_product(storage, limit=25) == made


def test_add_many_of_nothing_stores_nothing(storage: Storage) -> None:
    storage.products.add_many([])
    assert every_product(storage, limit=5) == []


def test_update_changes_only_given_fields_and_bumps_the_version(storage: Storage) -> None:
    product = a_product()
    storage.products.add(product)
    updated = storage.products.update(
        product.id, ProductChanges(price_cents=2500), expected_version=None, at=LATER
    )
    assert updated.price_cents == 2500
    assert (updated.name, updated.description, updated.stock) == (
        product.name,
        product.description,
        product.stock,
    )
    assert (updated.version, updated.updated_at, updated.created_at) == (2, LATER, NOW)
    assert storage.products.get(product.id) == updated


def test_update_can_set_every_field_at_once(storage: Storage) -> None:
    product = a_product()
    storage.products.add(product)
    changes = ProductChanges(name="Gadget ✓", description="", price_cents=1, stock=0)
    updated = storage.products.update(product.id, changes, expected_version=1, at=LATER)
    assert updated == Product(
        id=product.id,
        name="Gadget ✓",
        description="",
        price_cents=1,
        stock=0,
        created_at=NOW,
        updated_at=LATER,
        version=2,
    )
    assert storage.products.get(product.id) == updated


def test_update_with_a_stale_version_fails_and_changes_nothing(storage: Storage) -> None:
    product = a_product()
    storage.products.add(product)
    current = storage.products.update(
        product.id, ProductChanges(name="v2"), expected_version=1, at=LATER
    )
    with pytest.raises(PreconditionFailed):
        storage.products.update(
            product.id, ProductChanges(name="lost"), expected_version=1, at=LATER
        )
    assert storage.products.get(product.id) == current


def test_update_of_a_missing_product_is_not_found_with_or_without_a_version(
    storage: Storage,
) -> None:
    for version in (None, 1):
        with pytest.raises(NotFound):
            storage.products.update(
                "missing", ProductChanges(stock=1), expected_version=version, at=LATER
            )


def test_delete_honours_the_expected_version(storage: Storage) -> None:
    product = a_product()
    storage.products.add(product)
    with pytest.raises(PreconditionFailed):
        storage.products.delete(product.id, expected_version=2)
    assert storage.products.get(product.id) == product
    storage.products.delete(product.id, expected_version=1)
    with pytest.raises(NotFound):
        storage.products.get(product.id)


def test_delete_without_a_version_removes_whatever_is_there(storage: Storage) -> None:
    product = a_product(version=7)
    storage.products.add(product)
    storage.products.delete(product.id, expected_version=None)
    with pytest.raises(NotFound):
        storage.products.get(product.id)


def test_delete_of_a_missing_product_is_not_found_with_or_without_a_version(
    storage: Storage,
) -> None:
    for version in (None, 1):
        with pytest.raises(NotFound):
            storage.products.delete("missing", expected_version=version)


def test_concurrent_conditional_updates_lose_nothing(storage: Storage) -> None:
    """Every writer reads a version and writes against it: each version is won exactly once."""
    product = a_product(stock=0)
    storage.products.add(product)

    def writer(_: int) -> int:
        applied = 0
        for _ in range(15):
            current = storage.products.get(product.id)
            try:
                storage.products.update(
                    product.id,
                    ProductChanges(stock=current.stock + 1),
                    expected_version=current.version,
                    at=LATER,
                )
                applied += 1
            except PreconditionFailed:
                pass
        return applied

    with ThreadPoolExecutor(max_workers=8) as pool:
        applied = sum(pool.map(writer, range(8)))
    final = storage.products.get(product.id)
    assert applied > 0
    assert final.stock == applied
    assert final.version == applied + 1
