"""/metrics under `nimbus serve --workers 2`: a scrape, whichever worker answers it, counts
what every worker served (prometheus-client's multiprocess mode)."""

import os
import re
import time
from pathlib import Path

import httpx
import pytest

from nimbus.api.prometheus import FLUSH_SECONDS
from nimbus.entrypoints.cli import _metrics_files
from tests.api.test_metrics import TOKEN, value
from tests.backends import database_url
from tests.support import PASSWORD, make_settings, nimbus_serve

SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


def scrape(url: str) -> str:
    response = httpx.get(f"{url}/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.text
    return response.text


def scrape_until(url: str, count: float, **labels: str) -> str:
    """A scrape once the request count with these labels reaches `count` (or a few seconds
    after the other worker's counts were due): the worker that answers a scrape counts its own
    requests to the last, the other's reach the files within FLUSH_SECONDS."""
    deadline = time.monotonic() + FLUSH_SECONDS + 5
    while True:
        text = scrape(url)
        counted = value(text, "nimbus_http_request_duration_seconds_count", **labels)
        if counted >= count or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_counts_add_up(backend: str, tmp_path: Path) -> None:
    counts = tmp_path / "metrics"
    counts.mkdir()
    with (
        database_url(backend, tmp_path) as database,
        nimbus_serve(
            tmp_path / "data",
            "--workers",
            "2",
            NIMBUS_DATABASE_URL=database,
            NIMBUS_METRICS_TOKEN=TOKEN,
            PROMETHEUS_MULTIPROC_DIR=str(counts),
        ) as served,
    ):
        before = scrape(served.url)
        # Each on a connection of its own, so that both workers take some; each reaches the
        # store (a write), so that each worker's pool opens.
        for _ in range(40):
            assert httpx.get(f"{served.url}/health/ready").status_code == 200
        health = {"route": "/health/ready", "method": "GET", "status": "200"}
        after = scrape_until(served.url, 40, **health)
        # Both workers wrote counts (one file per process and kind of metric).
        writers = {re.sub(r"\D", "", path.name) for path in counts.glob("counter_*.db")}
        assert len(writers) == 2, sorted(path.name for path in counts.iterdir())

        assert (
            value(after, "nimbus_http_request_duration_seconds_count", **health)
            - value(before, "nimbus_http_request_duration_seconds_count", **health)
            == 40
        )
        if backend == "postgresql":
            # Each worker's pool, added up; none checked out between requests.
            assert value(after, "nimbus_db_pool_connections_max") == 2 * 10
            assert value(after, "nimbus_db_pool_connections_in_use") == 0


def test_serve_makes_and_removes_the_counts_directory(tmp_path: Path) -> None:
    with nimbus_serve(tmp_path / "data", "--workers", "2", NIMBUS_METRICS_TOKEN=TOKEN) as served:
        created = httpx.post(
            f"{served.url}/users", json={"username": "alice", "password": PASSWORD}
        )
        assert created.status_code == 201
        text = scrape_until(served.url, 1, route="/users", method="POST", status="201")
        named = _counts_directories(served.process.pid)
        assert len(named) == 1, named  # both workers were told the same one
        directory = Path(named.pop())
        assert directory.is_dir()
        assert list(directory.glob("*.db"))
    assert value(text, "nimbus_http_request_duration_seconds_count", route="/users", method="POST",
                 status="201") == 1  # fmt: skip
    assert not directory.exists()


def _counts_directories(pid: int) -> set[str]:
    """The PROMETHEUS_MULTIPROC_DIR in the environments of the process's children."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    named = set()
    for child in children:
        for entry in Path(f"/proc/{child}/environ").read_bytes().split(b"\0"):
            if entry.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
                named.add(entry.split(b"=", 1)[1].decode())
    return named


def test_one_worker_counts_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Multiprocess mode, whose every count is a file write, only for several workers."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    settings = make_settings(tmp_path, metrics_token=TOKEN)
    with _metrics_files(settings, 1):
        assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    with _metrics_files(settings, 2):
        directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        assert directory.is_dir()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert not directory.exists()
