"""One storage contract, run against every backend."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nimbus.domain.users import User
from nimbus.storage import open_storage
from nimbus.storage.base import Storage
from tests.backends import BACKENDS, database_url
from tests.factories import a_user


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
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
