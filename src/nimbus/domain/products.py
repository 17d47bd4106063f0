"""Products: seed 004's inventory, written by administrators, read by signed service calls."""

from datetime import datetime

from nimbus.values import frozen

NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 2000
PRICE_MAX_CENTS = 100_000_000  # one million in the currency's major unit
STOCK_MAX = 1_000_000_000
PAGE_DEFAULT = 10


@frozen
class Product:
    id: str  # UUIDv7: listed oldest first by id, so new products join the last page
    name: str
    description: str
    price_cents: int  # whole cents: no float rounding in any store
    stock: int
    created_at: datetime
    updated_at: datetime
    version: int


@frozen
class ProductChanges:
    """The fields a PUT or PATCH sets; None leaves a field as it is."""

    name: str | None = None
    description: str | None = None
    price_cents: int | None = None
    stock: int | None = None
