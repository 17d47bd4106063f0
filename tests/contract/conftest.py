"""One storage contract, run against every backend."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from nimbus.storage import open_storage
from nimbus.storage.base import Storage

BACKENDS = ["sqlite"]


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    url = {"sqlite": f"sqlite:///{tmp_path / 'contract.db'}"}[request.param]
    opened = open_storage(url)
    opened.create_schema()
    yield opened
    opened.close()
