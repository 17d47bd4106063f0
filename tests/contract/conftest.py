"""One storage contract, run against every backend."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from nimbus.storage import open_storage
from nimbus.storage.base import Storage
from tests.backends import BACKENDS, database_url


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    with database_url(request.param, tmp_path) as url:
        opened = open_storage(url)
        opened.create_schema()
        yield opened
        opened.close()
