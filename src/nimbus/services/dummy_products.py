"""Believable dummy products for `nimbus seed products` (seed 004's seed script)."""

import random
from collections.abc import Iterator

ADJECTIVES = (
    "Ergonomic", "Rustic", "Compact", "Handcrafted", "Lightweight", "Durable", "Sleek",
    "Vintage", "Modern", "Refurbished", "Portable", "Insulated", "Heavy-Duty", "Minimalist",
    "Waterproof", "Recycled", "Classic", "Foldable", "Premium", "Everyday",
)  # fmt: skip
MATERIALS = (
    "Oak", "Bamboo", "Steel", "Aluminium", "Cotton", "Wool", "Leather", "Ceramic", "Glass",
    "Granite", "Linen", "Copper", "Walnut", "Cork", "Rubber", "Canvas", "Brass", "Marble",
)  # fmt: skip
PRODUCTS = (
    ("Desk Lamp", 1800, 8900), ("Coffee Mug", 600, 2400), ("Backpack", 3500, 14000),
    ("Water Bottle", 900, 3900), ("Chair", 4500, 32000), ("Notebook", 300, 1800),
    ("Headphone Stand", 1500, 5900), ("Cutting Board", 1400, 6500), ("Wallet", 1900, 9900),
    ("Plant Pot", 700, 4500), ("Keyboard", 2900, 17900), ("Wall Clock", 1600, 8900),
    ("Bookshelf", 6900, 39900), ("Serving Bowl", 1100, 5400), ("Phone Case", 900, 4900),
    ("Picnic Blanket", 2200, 7900), ("Pen Holder", 500, 2900), ("Tote Bag", 800, 3600),
    ("Side Table", 5900, 24900), ("Thermos", 1500, 4900), ("Candle Holder", 700, 3400),
    ("Laptop Sleeve", 1700, 6900), ("Bicycle Bell", 400, 2200), ("Umbrella", 1200, 5900),
)  # fmt: skip
USES = (
    "for the home office", "for long commutes", "for small kitchens", "for weekend trips",
    "for daily use", "for the workshop", "for gifting", "for outdoor living",
)  # fmt: skip
# Spelled with a vowel but said with a consonant ("a unit"), or the other way ("an hour").
SAID_WITH_A = ("eu", "one", "uni", "use", "usu", "ute")
SAID_WITH_AN = ("heir", "honest", "honor", "honour", "hour")


def indefinite_article(word: str) -> str:
    """The article before `word`, by how it is said: "An insulated", "A heavy-duty", "A unique"."""
    lowered = word.lower()
    if lowered.startswith(SAID_WITH_AN):
        return "An"
    if lowered.startswith(SAID_WITH_A):
        return "A"
    return "An" if lowered[:1] in ("a", "e", "i", "o", "u") else "A"


def dummy_products(
    count: int, rng: random.Random | None = None
) -> Iterator[tuple[str, str, int, int]]:
    """`count` drafts of (name, description, price_cents, stock)."""
    rng = rng or random.Random()  # noqa: S311 - dummy data, not security
    for _ in range(count):
        adjective, material = rng.choice(ADJECTIVES), rng.choice(MATERIALS)
        kind, low, high = rng.choice(PRODUCTS)
        name = f"{adjective} {material} {kind}"
        description = (
            f"{indefinite_article(adjective)} {adjective.lower()} {kind.lower()}"
            f" in {material.lower()}, {rng.choice(USES)}."
        )
        # Prices end in .99 or .49 or .00, as shop prices do.
        price = rng.randrange(low // 100, high // 100) * 100 + rng.choice((99, 49, 0))
        stock = 0 if rng.random() < 0.08 else rng.randint(1, 500)
        yield name, description, price, stock
