"""A create that got its 201 survives the server process being killed (SIGKILL) mid-stream."""

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.backends import BACKENDS, database_url
from tests.support import log_in, nimbus_serve, sign_up

WRITERS = 4
KILL_AFTER = 150  # acknowledged creates before the kill; the writers keep going until it lands
MAX_PER_WRITER = 2000


def _all_uids(client: httpx.Client, headers: dict[str, str]) -> set[str]:
    uids: set[str] = set()
    url: str | None = "/todos?limit=100"
    while url is not None:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        uids |= {todo["uid"] for todo in response.json()}
        link = response.links.get("next")
        url = link["url"] if link else None
    return uids


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_acknowledged_create_survives_sigkill(backend: str, tmp_path: Path) -> None:
    with database_url(backend, tmp_path) as database:
        acknowledged: list[str] = []
        lock = threading.Lock()
        enough = threading.Event()

        with nimbus_serve(tmp_path / "data", NIMBUS_DATABASE_URL=database) as served:
            url, process = served.url, served.process
            with httpx.Client(base_url=url, timeout=30) as client:
                sign_up(client, "writer")
                headers = {"Authorization": f"Bearer {log_in(client, 'writer')}"}

            def write(i: int) -> int:
                errors = 0
                with httpx.Client(base_url=url, timeout=30) as http:
                    for n in range(MAX_PER_WRITER):
                        try:
                            response = http.post(
                                "/todos", json={"description": f"w{i} #{n}"}, headers=headers
                            )
                        except httpx.TransportError:
                            errors += 1
                            break  # the server is gone
                        assert response.status_code == 201, response.text
                        with lock:
                            acknowledged.append(response.json()["uid"])
                            if len(acknowledged) >= KILL_AFTER:
                                enough.set()
                return errors

            with ThreadPoolExecutor(max_workers=WRITERS) as pool:
                writers = [pool.submit(write, i) for i in range(WRITERS)]
                assert enough.wait(timeout=120), "the writers did not get going"
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)
                cut_off = sum(writer.result() for writer in writers)
            assert process.returncode == -signal.SIGKILL
            assert cut_off > 0, "the kill landed after the stream ended"

        with (
            nimbus_serve(tmp_path / "data", NIMBUS_DATABASE_URL=database) as served,
            httpx.Client(base_url=served.url, timeout=30) as client,
        ):
            # The same signing key and session store: the token from before still works.
            stored = _all_uids(client, headers)
        assert len(acknowledged) >= KILL_AFTER
        assert set(acknowledged) <= stored
        # Anything beyond the acknowledged is a create the kill cut off after its commit.
        assert len(stored - set(acknowledged)) <= WRITERS
