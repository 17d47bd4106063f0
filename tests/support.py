"""Test helpers shared by every suite: a live server, factories and small utilities."""

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from nimbus.api.app import create_app
from nimbus.bootstrap import Container, build
from nimbus.domain.users import Role
from nimbus.settings import Settings

PASSWORD = "correct horse battery"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **overrides)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def live_server(container: Container) -> Iterator[str]:
    """Serve the app over real HTTP on 127.0.0.1 in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(container), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
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
