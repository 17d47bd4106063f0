"""The dummy products of `nimbus seed products` read as English: "an" before a vowel sound."""

import random
import re

import pytest

from nimbus.services.dummy_products import ADJECTIVES, dummy_products, indefinite_article

# "A" before a word that starts with a vowel letter, "An" before one that does not; the
# generator's words hold none of the exceptions (no "unique", no "hour").
WRONG_ARTICLE = re.compile(r"\b(?:A (?=[aeiou])|An (?=[^aeiou]))", re.IGNORECASE)


def test_no_name_or_description_has_the_wrong_article() -> None:
    adjectives = set()
    for seed in range(200):
        for name, description, _, _ in dummy_products(25, random.Random(seed)):
            for text in (name, description):
                assert not WRONG_ARTICLE.search(text), f"seed {seed}: {text!r}"
            adjectives.add(name.split()[0])
    # Every adjective came up, those after "An" among them.
    assert adjectives == set(ADJECTIVES)


def test_descriptions_start_with_the_article_their_adjective_takes() -> None:
    drafts = list(dummy_products(2000, random.Random(4)))
    openings = {description.split()[0] + " " + name.split()[0] for name, description, *_ in drafts}
    assert "An Insulated" in openings
    assert "An Everyday" in openings
    assert "An Ergonomic" in openings
    assert "A Heavy-Duty" in openings
    assert "A Rustic" in openings


@pytest.mark.parametrize(
    ("word", "article"),
    [
        ("insulated", "An"),
        ("Everyday", "An"),
        ("ergonomic", "An"),
        ("oak", "An"),
        ("umbrella", "An"),
        ("rustic", "A"),
        ("Heavy-Duty", "A"),
        ("unique", "A"),
        ("European", "A"),
        ("one-off", "A"),
        ("hour-long", "An"),
        ("honest", "An"),
    ],
)
def test_the_article_follows_the_sound(word: str, article: str) -> None:
    assert indefinite_article(word) == article
