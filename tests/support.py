"""Test helpers shared by every suite: a live server, factories and small utilities."""

import asyncio
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from nimbus import metrics
from nimbus.api.app import create_app
from nimbus.bootstrap import build
from nimbus.container import Container
from nimbus.domain.users import Role
from nimbus.settings import Settings

PASSWORD = "correct horse battery"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(env_file=None, data_dir=data_dir, **overrides)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _PromptServer(uvicorn.Server):
    """uvicorn, stopping as soon as it is told to: it looks for should_exit every hundredth of
    a second (uvicorn: every tenth), and does not wait its fixed tenth of a second for open
    connections when there are none. Hundreds of tests each stop a server."""

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            await asyncio.sleep(0.01)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's own steps, in its order, with its waits made short.
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        while self.server_state.connections or self.server_state.tasks:  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.01)
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


@contextmanager
def live_server(container: Container) -> Iterator[str]:
    """Serve the app over real HTTP on 127.0.0.1 in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # As `nimbus serve` runs it: the app, not uvicorn, decides whose forwarded headers count.
    config = uvicorn.Config(
        create_app(container), log_level="warning", lifespan="on", proxy_headers=False
    )
    server = _PromptServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(settings: Settings) -> "Iterator[httpx.Client]":
    container = build(settings)
    with live_server(container) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def sign_up(client: httpx.Client, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    response = client.post("/users", json={"username": username, "password": password, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def log_in(client: httpx.Client, username: str, password: str = PASSWORD) -> str:
    response = client.post("/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def admin_token(
    client: httpx.Client, container: Container, username: str = "root"
) -> dict[str, str]:
    """Make an administrator (as `nimbus users create --admin` does) and log it in."""
    container.users.create(username=username, password=PASSWORD, role=Role.ADMIN)
    return {"Authorization": f"Bearer {log_in(client, username)}"}


def user_token(client: httpx.Client, username: str) -> dict[str, str]:
    """Sign a new user up and return the Authorization header for it."""
    sign_up(client, username)
    return {"Authorization": f"Bearer {log_in(client, username)}"}


NIMBUS = str(Path(sys.executable).with_name("nimbus"))


@dataclass
class Served:
    """A `nimbus serve` process; `log` is what it wrote to stderr, once it has stopped."""

    url: str
    data_dir: Path
    process: "subprocess.Popen[bytes]"
    log: str = ""

    def records(self) -> list[dict[str, Any]]:
        """The JSON records in the log (nimbus logs JSON when stderr is not a terminal)."""
        return [record for line in self.log.splitlines() if (record := json_record(line))]


@contextmanager
def nimbus_serve(
    data_dir: Path,
    *args: str,
    max_file_bytes: int | None = None,
    port: int | None = None,
    **env: str,
) -> Iterator[Served]:
    """`nimbus serve` as users start it, on 127.0.0.1 and a free port (or `port`: a setting
    such as NIMBUS_PUBLIC_URL may need to name it), in a process group of its own (a test may
    kill every worker at once); stopped at the end, when every traceback in its log must be of
    a 503 it answered (unexpected_tracebacks). `max_file_bytes` caps the size of any file it
    writes (RLIMIT_FSIZE: past it the kernel refuses to grow a file, as on a full disk)."""
    port = port or free_port()

    def limit_file_size() -> None:
        if max_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    process = subprocess.Popen(
        [NIMBUS, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=cli_env(data_dir, **env),
        cwd=data_dir.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=limit_file_size,  # the test process has threads: a limit only, no locks
    )
    served = Served(f"http://127.0.0.1:{port}", data_dir, process)
    # Read as it is written: a server that logs more than a pipe holds (64 KiB, a few hundred
    # requests) would otherwise block on its next log line, and answer nothing more.
    stderr = process.stderr
    assert stderr is not None
    log: list[bytes] = []
    reader = threading.Thread(target=lambda: log.append(stderr.read()), daemon=True)
    reader.start()
    try:
        _wait_until_up(served)
        yield served
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
        reader.join(timeout=15)
        served.log = b"".join(log).decode()
        stderr.close()
    assert not unexpected_tracebacks(served.log), served.log


# The record nimbus logs for each 503 it answers (nimbus.api.errors), with the traceback of the
# outage; Python's own lines between the exceptions of one chain.
_RECORD_OF_A_503 = re.compile(r"503 on [A-Z]+ (/\S*|-): ")
_TRACEBACK = "Traceback (most recent call last):"
_CHAIN_LINKS = {
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
}
_UNAVAILABLE = "nimbus.domain.errors.Unavailable: "


def unexpected_tracebacks(log: str) -> list[str]:
    """The tracebacks in a `nimbus serve` log that are not part of a record nimbus logged for
    a 503 it answered: an unhandled error, a 500, an exception uvicorn logged. Each is named
    by the line before it. A 503's record is its message line, then one chain of tracebacks
    whose last exception is Unavailable."""
    lines = log.splitlines()
    found = []
    for start, line in enumerate(lines):
        record = json_record(line)
        if record is not None:
            if "exception" in record and not _a_503(record):
                found.append(str(record.get("message")))
            continue
        if line != _TRACEBACK:
            continue
        before = _previous_line(lines, start)
        if before in _CHAIN_LINKS:
            continue  # checked with the traceback that starts its chain
        last = _last_exception(lines, start)
        if not (_RECORD_OF_A_503.match(before) and last.startswith(_UNAVAILABLE)):
            found.append(before)
    return found


def json_record(line: str) -> dict[str, Any] | None:
    """A line of nimbus's JSON log as its record, or None for any other line."""
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _a_503(record: dict[str, Any]) -> bool:
    exception = str(record["exception"]).splitlines()
    last = next((line for line in reversed(exception) if not line.startswith(" ")), "")
    return bool(_RECORD_OF_A_503.match(str(record.get("message", "")))) and last.startswith(
        _UNAVAILABLE
    )


def _previous_line(lines: list[str], index: int) -> str:
    return next((line for line in reversed(lines[:index]) if line.strip()), "")


def _last_exception(lines: list[str], start: int) -> str:
    """The line naming the last exception of the chain of tracebacks that starts at `start`:
    the first one not indented (a frame) after the chain's last traceback."""
    last = start
    for index in range(start + 1, len(lines)):
        if lines[index] == _TRACEBACK:
            if _previous_line(lines, index) not in _CHAIN_LINKS:
                break
            last = index
    return next((line for line in lines[last + 1 :] if not line.startswith(" ")), "")


def _wait_until_up(served: Served) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise RuntimeError("nimbus serve exited")
        try:
            if httpx.get(f"{served.url}/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("nimbus serve did not come up")


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment for a `nimbus` subprocess: this one, less any NIMBUS_* settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NIMBUS_")}
    return env | {"NIMBUS_DATA_DIR": str(data_dir)} | extra


def run_cli(
    data_dir: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NIMBUS, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=cli_env(data_dir, **(env or {})),
        cwd=data_dir.parent,
        timeout=60,
        check=False,
    )


class CountingSink(metrics.Off):
    """A metrics sink that keeps what the audit trail, the logins and the mails count."""

    def __init__(self) -> None:
        self.audit_failures = 0
        self.logins: list[str] = []
        self.mails: list[str] = []

    def mail(self, outcome: metrics.MailOutcome) -> None:
        self.mails.append(outcome)

    def audit_failure(self) -> None:
        self.audit_failures += 1

    def login(self, outcome: metrics.LoginOutcome) -> None:
        self.logins.append(outcome)
