from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nimbus.bootstrap import build
from nimbus.container import Container
from nimbus.settings import Settings
from nimbus.storage import open_storage
from tests.backends import BACKENDS, database_url
from tests.loop_guard import guard_the_loop
from tests.support import live_server, make_settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked store_independent runs once, on SQLite: what it checks is decided before
    any store is reached, so the other backends would only repeat it."""
    repeats = [
        item
        for item in items
        if item.get_closest_marker("store_independent") is not None
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("settings", "sqlite") != "sqlite"  # type: ignore[attr-defined]
    ]
    if repeats:
        config.hook.pytest_deselected(items=repeats)
        items[:] = [item for item in items if item not in repeats]


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a fresh, empty store; API tests run once per storage backend."""
    with database_url(request.param, tmp_path) as url:
        yield make_settings(tmp_path / "data", database_url=url)


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    storage = open_storage(settings.resolved_database_url, timeout=settings.database_timeout)
    built = build(settings, storage=guard_the_loop(storage))
    yield built
    built.close()


@pytest.fixture
def client(container: Container) -> Iterator[httpx.Client]:
    """An HTTP client for a fresh nimbus on its own SQLite file, served on 127.0.0.1."""
    with live_server(container) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http
