import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nimbus import metrics
from nimbus.bootstrap import build
from nimbus.container import Container
from nimbus.settings import Settings
from nimbus.storage import open_storage
from tests.backends import BACKENDS, database_url
from tests.factories import Account, an_account, an_admin
from tests.loop_guard import guard_the_loop
from tests.support import live_server, make_settings

# The Lambda package leaves pydantic.v1 out (the Makefile's lambda-package): every test runs
# without it, so that nothing nimbus does can need it.
assert "pydantic.v1" not in sys.modules
sys.modules["pydantic.v1"] = None  # type: ignore[assignment]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked store_independent runs once, on SQLite: what it checks is decided before
    any store is reached, so the other backends would only repeat it."""
    repeats = [
        item
        for item in items
        if item.get_closest_marker("store_independent") is not None
        and _backend(item) not in (None, "sqlite")
    ]
    if repeats:
        config.hook.pytest_deselected(items=repeats)
        items[:] = [item for item in items if item not in repeats]


@pytest.fixture(autouse=True)
def _machine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Under xdist, a test marked `alone` has the machine to itself: it waits for the tests
    running beside it to end, and the other workers wait for it (a benchmark pins its server
    to one CPU, and another worker's test there starves it). A readers-writer lock on files
    every worker of this run shares; a waiting `alone` test goes first (the turnstile)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    shared = tmp_path_factory.getbasetemp().parent  # this run's, above each worker's own
    alone = request.node.get_closest_marker("alone") is not None
    with (
        open(shared / "turnstile.lock", "a") as turnstile,
        open(shared / "machine.lock", "a") as machine,
    ):
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        if alone:
            fcntl.flock(machine, fcntl.LOCK_EX)
        else:
            fcntl.flock(machine, fcntl.LOCK_SH)
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(machine, fcntl.LOCK_UN)
            fcntl.flock(turnstile, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _metrics_off() -> Iterator[None]:
    """Each test starts with metrics off: an app built with a metrics token, or a Lambda
    handler, chooses the process's sink (nimbus.metrics.use)."""
    yield
    metrics.use(metrics.Off())


def _backend(item: pytest.Item) -> object:
    """The backend a test runs on, from whichever fixture is parametrized over BACKENDS
    (`settings`, or a suite's own `server`); None if none is."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    return next((param for param in params if param in BACKENDS), None)


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


@pytest.fixture
def alice(client: httpx.Client) -> Account:
    return an_account(client, "alice", email="alice@example.com", name="Alice")


@pytest.fixture
def bob(client: httpx.Client) -> Account:
    return an_account(client, "bob")


@pytest.fixture
def admin(client: httpx.Client, container: Container) -> Account:
    return an_admin(client, container)
