"""What the access log and the metrics cost a request, counted in CPU instructions.

A few percent of a request is less than two load runs differ by on a shared machine, so this
counts instead of timing: one process serves the single-todo read in process (the ASGI app
called directly, SQLite, the request as uvicorn would hand it over) under valgrind's
callgrind, which counts the instructions each phase executes, the same on every run. The
phases take turns in that one process: the access record off (NIMBUS_LOG_LEVEL=WARNING) or
on, and metrics off or on (prometheus-client in its multiprocess mode, as `nimbus serve
--workers N` runs it; one worker counts in memory, for less). Each phase warms up, then
counts N requests between two calls to getppid(), where callgrind writes its counts
(--dump-before=getppid). The log lines go to /dev/null: what a log shipper does with them is
not counted, nor is the time the kernel takes to write them.

Run: .venv/bin/python -m bench.overhead [--requests N]   (needs valgrind: apt-get install valgrind)
"""

import argparse
import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import callgrind, inprocess

PHASES = ("neither", "access log", "metrics", "both")
PASSWORD = "correct horse battery"


def _serve(requests: int) -> None:
    """The measured process: every phase in turn, getppid() around each count."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="nimbus-bench-metrics-")
    from nimbus import logs, metrics
    from nimbus.api.app import create_app
    from nimbus.api.prometheus import Prometheus
    from nimbus.bootstrap import build
    from nimbus.settings import Settings

    data = Path(tempfile.mkdtemp(prefix="nimbus-bench-"))
    settings = Settings(env_file=None, data_dir=data, secret_key="bench-" * 8)
    logs.configure("json", "INFO", open(os.devnull, "w"))  # noqa: SIM115
    app = create_app(build(settings))
    sink = Prometheus()
    access = logging.getLogger("nimbus.access")

    async def call(method: str, path: str, body: bytes = b"", token: str = "") -> Any:
        return await inprocess.call(app, method, path, body, token)

    def phase(name: str) -> None:
        on = {"access log": (True, False), "metrics": (False, True), "both": (True, True)}
        log_on, metrics_on = on.get(name, (False, False))
        access.setLevel(logging.INFO if log_on else logging.WARNING)
        metrics.use(sink if metrics_on else metrics.Off())

    async def run() -> None:
        credentials = json.dumps({"username": "bench", "password": PASSWORD}).encode()
        await call("POST", "/users", credentials)
        token = json.loads((await call("POST", "/login", credentials))["body"])["access_token"]
        created = await call("POST", "/todos", b'{"description": "bench"}', token)
        path = f"/todos/{json.loads(created['body'])['uid']}"
        for name in PHASES:
            phase(name)
            for _ in range(100):
                await call("GET", path, token=token)
        for name in PHASES:
            phase(name)
            for _ in range(20):
                await call("GET", path, token=token)
            os.getppid()  # callgrind writes what came before, and counts afresh
            for _ in range(requests):
                answer = await call("GET", path, token=token)
            os.getppid()
            assert answer["status"] == 200, answer

    asyncio.run(run())


def measure(requests: int) -> dict[str, float]:
    """Instructions per request, by phase."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("bench.overhead counts with valgrind: apt-get install valgrind")
    with tempfile.TemporaryDirectory(prefix="nimbus-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                "--dump-before=getppid",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.overhead",
                "--serve",
                str(requests),
            ],
            check=True,
            capture_output=True,
            env=os.environ | {"PYTHONHASHSEED": "0"},
        )
        counts = callgrind.per_request(out, len(PHASES), requests)
    return dict(zip(PHASES, counts, strict=True))


def report(per_request: dict[str, float], requests: int) -> str:
    base = per_request["neither"]
    lines = [
        f"GET /todos/{{uid}} in process, SQLite, {requests} requests a phase: instructions per "
        "request (callgrind)",
        "",
        "| access log, metrics | instructions | more than neither |",
        "|---|---:|---:|",
    ]
    for name, count in per_request.items():
        lines.append(f"| {name} | {count:,.0f} | {count / base - 1:+.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests counted a phase")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        _serve(args.serve)
        return
    print(report(measure(args.requests), args.requests))


if __name__ == "__main__":
    main()
