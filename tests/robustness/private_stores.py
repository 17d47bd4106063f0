"""Stores a test may stop and start: a private PostgreSQL cluster and a moto server of its own
(never the shared ones other tests use)."""

from collections.abc import Iterator
from contextlib import contextmanager

from tests.backends import PrivatePostgres, postgres_bin
from tests.moto_server import MotoServer
from tests.support import free_port


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = postgres_bin()
    assert bin_dir is not None, "scripts/install --dev installs Debian's postgresql package"
    server = PrivatePostgres(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@contextmanager
def private_moto() -> Iterator[MotoServer]:
    server = MotoServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
