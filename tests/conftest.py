from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nimbus.bootstrap import Container, build
from nimbus.settings import Settings
from tests.support import live_server, make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    built = build(settings)
    yield built
    built.close()


@pytest.fixture
def client(container: Container) -> Iterator[httpx.Client]:
    """An HTTP client for a fresh nimbus on its own SQLite file, served on 127.0.0.1."""
    with live_server(container) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http
