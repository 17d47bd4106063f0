"""`nimbus` on a pseudo-terminal, as a person at a keyboard runs it."""

import os
import pty
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import NIMBUS, cli_env


@dataclass
class Terminal:
    """The terminal's side of a running `nimbus`: what it has shown, and the keyboard."""

    fd: int
    process: "subprocess.Popen[bytes]"
    output: bytes = b""

    def expect(self, text: str, timeout: float = 30) -> None:
        """Read until `text` is on the screen (AssertionError if it never comes)."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            if time.monotonic() > deadline or not self._read():
                raise AssertionError(f"no {text!r} in {self.output!r}")

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def finish(self, timeout: float = 30) -> int:
        """Read everything up to the command's exit; its exit status."""
        deadline = time.monotonic() + timeout
        while self._read() and time.monotonic() < deadline:
            pass
        return self.process.wait(timeout=timeout)

    @property
    def screen(self) -> str:
        return self.output.decode(errors="replace")

    def _read(self) -> bool:
        try:
            chunk = os.read(self.fd, 1024)
        except OSError:  # EIO: the command has exited and closed its side
            return False
        self.output += chunk
        return bool(chunk)


@contextmanager
def terminal(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Terminal]:
    """`nimbus ARGS` with stdin, stdout and stderr on a new pseudo-terminal."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [NIMBUS, *args],
        stdin=secondary, stdout=secondary, stderr=secondary,
        env=cli_env(data_dir, **(env or {})), cwd=data_dir.parent, close_fds=True,
    )  # fmt: skip
    os.close(secondary)
    try:
        yield Terminal(primary, process)
    finally:
        process.kill()
        process.wait(timeout=30)
        os.close(primary)
