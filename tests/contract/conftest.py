"""One storage contract, run against every backend, and against the in-memory store the service
tests use (so that it is held to the same rules)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nimbus.domain.users import User
from nimbus.storage import open_storage
from nimbus.storage.base import Storage
from tests.backends import BACKENDS, database_url
from tests.factories import a_user
from tests.services.memory import MemoryStorage


@pytest.fixture(params=[*BACKENDS, "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "memory":
        yield MemoryStorage()
        return
    with database_url(request.param, tmp_path) as url:
        opened = open_storage(url)
        opened.create_schema()
        yield opened
        opened.close()


def stored_user(storage: Storage, **fields: Any) -> User:
    """A user saved in the store, as todos and sessions need an owner that exists."""
    user = a_user(**fields)
    storage.users.add(user)
    return user
