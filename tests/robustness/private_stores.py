"""Stores a test may stop and start: a private PostgreSQL cluster and a moto server of its own
(never the shared ones other tests use)."""

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.moto_server import MotoServer
from tests.support import free_port


def _postgres_bin() -> Path:
    """The machine's PostgreSQL binaries, else those of the pgserver wheel."""
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name)
    )
    if installed and (installed[-1] / "pg_ctl").exists():
        return installed[-1]
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _system_user(bin_dir: Path) -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: as root, run it as another user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        pass
    import stat

    from pgserver.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry: pwd.struct_passwd | None = ensure_user_exists("pgserver")
    assert entry is not None
    ensure_prefix_permissions(bin_dir)
    readable = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bin_dir, readable)
    ensure_folder_permissions(bin_dir.parent / "lib", readable)
    return entry


class PrivatePostgres:
    """A throwaway cluster on 127.0.0.1 and a free port, trust auth, fsync off."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.port = free_port()
        self.data = Path(tempfile.mkdtemp(prefix="nimbus-pg-"))
        self.user = _system_user(self.bin)
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


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
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
