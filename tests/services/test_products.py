import pytest

from nimbus.domain.errors import NotFound, PreconditionFailed
from nimbus.domain.products import ProductChanges
from nimbus.services.products import SEED_BATCH, ProductService
from tests.services.conftest import Clock
from tests.services.memory import MemoryStorage


@pytest.fixture
def products(storage: MemoryStorage, clock: Clock) -> ProductService:
    return ProductService(storage.products, clock)


def test_a_new_product_is_at_version_one_and_lists_oldest_first(
    products: ProductService, clock: Clock
) -> None:
    made = []
    for i in range(3):
        made.append(products.create(f"p{i}", "d", 100 * i, i))
        clock.advance(seconds=1)
    assert (made[0].version, made[0].created_at, made[0].price_cents) == (1, made[0].updated_at, 0)
    first = products.list(limit=2, cursor=None)
    rest = products.list(limit=2, cursor=first.next_cursor)
    assert [*first.items, *rest.items] == made
    assert products.get(made[1].id) == made[1]


def test_drafts_are_stored_in_batches_and_each_batch_is_reported(
    products: ProductService,
) -> None:
    heard: list[int] = []
    drafts = ((f"p{i}", "d", 100, i) for i in range(2 * SEED_BATCH + 5))
    assert products.add_all(drafts, progress=heard.append) == 2 * SEED_BATCH + 5
    assert heard == [SEED_BATCH, SEED_BATCH, 5]
    listed = products.list(limit=100, cursor=None)
    assert [p.stock for p in listed.items] == list(range(100))


def test_no_drafts_store_nothing_and_report_nothing(products: ProductService) -> None:
    heard: list[int] = []
    assert products.add_all([], progress=heard.append) == 0
    assert heard == []
    assert products.list(limit=5, cursor=None).items == []


def test_changes_are_stamped_by_the_clock_and_need_the_current_version(
    products: ProductService, clock: Clock
) -> None:
    product = products.create("Widget", "A widget", 1999, 5)
    clock.advance(minutes=1)
    changed = products.update(product.id, ProductChanges(stock=4), expected_version=1)
    assert (changed.stock, changed.name, changed.version) == (4, "Widget", 2)
    assert (changed.created_at, changed.updated_at) == (product.created_at, clock.now)
    with pytest.raises(PreconditionFailed):
        products.update(product.id, ProductChanges(stock=3), expected_version=1)
    with pytest.raises(PreconditionFailed):
        products.delete(product.id, expected_version=1)
    products.delete(product.id, expected_version=None)
    with pytest.raises(NotFound):
        products.get(product.id)
    with pytest.raises(NotFound):
        products.update(product.id, ProductChanges(stock=3), expected_version=None)
