"""Where each storage backend lives for tests, and a private corner of it per test."""

import atexit
import functools
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from tests.moto_server import MotoServer
from tests.support import free_port

BACKENDS = ["sqlite", "postgresql", "dynamodb"]

# AWS clients sign even for a local DynamoDB-API server; these credentials reach nothing real.
for _name, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                      ("AWS_DEFAULT_REGION", "us-east-1")):  # fmt: skip
    os.environ.setdefault(_name, _value)

# The machine's PostgreSQL: 127.0.0.1:5432, trust auth, database "test".
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@functools.cache
def postgres_url() -> str:
    """The database the PostgreSQL tests make their schemas in: one per xdist worker, on the
    server postgres_server() names."""
    return worker_database(postgres_server())


def worker_database(server: str) -> str:
    """Under xdist, a database of this worker's own on `server` ("test_gw0", made once and
    kept): schemas are per test anyway, but migrations take a database-wide advisory lock,
    which workers would otherwise queue for. The shared database where none can be made."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    url = urlsplit(server)
    shared = url.path.lstrip("/")
    if not (worker.isalnum() and shared.isidentifier()):
        return server
    name = f"{shared}_{worker}"
    try:
        with psycopg.connect(server, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).rowcount:
                conn.execute(f'CREATE DATABASE "{name}"')
    except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
        pass  # another run's worker of the same number made it just now
    except psycopg.Error:
        return server  # no right to make one: the shared database does, a little slower
    return urlunsplit(url._replace(path=f"/{name}"))


def postgres_server() -> str:
    """NIMBUS_TEST_POSTGRES_URL, else the local server, else a private one from Debian's
    `postgresql` package, so the suite runs on a machine where no PostgreSQL runs."""
    configured = os.environ.get("NIMBUS_TEST_POSTGRES_URL")
    if configured:
        return configured
    try:
        psycopg.connect(LOCAL_POSTGRES, connect_timeout=3).close()
        return LOCAL_POSTGRES
    except psycopg.OperationalError:
        pass
    private = debian_postgres()
    if private is not None:
        return private
    pytest.fail(
        f"The PostgreSQL tests need a server: none answers at {LOCAL_POSTGRES}, and Debian's"
        " postgresql package (scripts/install --dev installs it) is not here to start a"
        " private one. Name one in NIMBUS_TEST_POSTGRES_URL, or run one on 127.0.0.1:5432"
        ' that trusts local connections and has a database "test" (user postgres), for'
        " example: docker run -d -p 127.0.0.1:5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust"
        " -e POSTGRES_DB=test postgres:16",
        pytrace=False,
    )


def debian_postgres() -> str | None:
    """A private PostgreSQL from the machine's binaries, with a database "test"; stopped and
    removed at exit. None without the binaries."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        return None
    server = PrivatePostgres(bin_dir)
    server.start()
    atexit.register(server.remove)
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE test")
    return server.url.rsplit("/", 1)[0] + "/test"


def postgres_bin() -> Path | None:
    """The newest of the machine's PostgreSQL binaries (Debian's layout), if any."""
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name)
    )
    return installed[-1] if installed and (installed[-1] / "pg_ctl").exists() else None


def _system_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: as root, run it as the user Debian's package made."""
    return pwd.getpwnam("postgres") if os.geteuid() == 0 else None


class PrivatePostgres:
    """A throwaway cluster on 127.0.0.1 and a free port, trust auth, fsync off."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = free_port()
        self.data = Path(tempfile.mkdtemp(prefix="nimbus-pg-"))
        self.user = _system_user()
        if self.user is not None:
            os.chown(self.data, self.user.pw_uid, self.user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=utf8")  # fmt: skip

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "log"), "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        # fast: every client connection is cut, as when a server goes down under load.
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.data, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [str(self.bin / program), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=self.user.pw_uid if self.user is not None else None,
            group=self.user.pw_gid if self.user is not None else None,
            cwd=self.data,
            timeout=120,
        )


@functools.cache
def dynamodb_endpoint() -> str:
    """moto's DynamoDB-API server on 127.0.0.1, shared by the tests, stopped at exit."""
    server = MotoServer(free_port())
    server.start()
    atexit.register(server.stop)
    return server.endpoint


@contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A NIMBUS_DATABASE_URL for an empty store of this backend, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if backend == "dynamodb":
        prefix = f"t{uuid.uuid4().hex[:12]}-"
        url = (
            f"dynamodb://?region=us-east-1&table_prefix={prefix}&endpoint_url={dynamodb_endpoint()}"
        )
        try:
            yield url
        finally:
            from nimbus.storage import open_storage

            storage = open_storage(url)
            storage.drop_schema()
            storage.close()
        return
    server = postgres_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in server else "?"
    try:
        yield f"{server}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
