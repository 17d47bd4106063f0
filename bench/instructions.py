"""The busiest requests in CPU instructions: the working tree against an earlier commit.

A change that takes a tenth off a request moves a load run's ratio by less than the machine
drifts between two runs. This counts instead of timing: one process per tree serves the
single-todo read, a page of 50 todos and a new todo in process (the ASGI app called directly,
SQLite, the access record on, as `nimbus serve` runs), under valgrind's callgrind, which counts the
instructions each phase executes, nearly the same on every run. Each phase warms up, then
counts N requests between two calls to getppid(), where callgrind writes its counts
(--dump-before=getppid). The other commit is checked out as a git worktree, and its nimbus
is imported from there; the measuring code is this tree's.

Run: .venv/bin/python -m bench.instructions [--base REV] [--requests N]
     (needs valgrind: apt-get install valgrind)
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

from bench import callgrind
from bench.inprocess import call

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("GET /todos/{uid}", "GET /todos?limit=50", "POST /todos")
PASSWORD = "correct horse battery"


def _serve(requests: int) -> None:
    """The measured process: each phase in turn, getppid() around its count."""
    import nimbus
    from nimbus import logs
    from nimbus.api.app import create_app
    from nimbus.bootstrap import build
    from nimbus.settings import Settings

    expected = Path(os.environ["BENCH_NIMBUS_FROM"]).resolve()
    assert Path(nimbus.__file__).resolve().is_relative_to(expected), nimbus.__file__
    # From the environment (NIMBUS_DATA_DIR, NIMBUS_SECRET_KEY): the same for any commit.
    logs.configure("json", "INFO", open(os.devnull, "w"))  # noqa: SIM115
    logging.getLogger("nimbus.access").setLevel(logging.INFO)
    app = create_app(build(Settings()))

    async def run() -> None:
        credentials = json.dumps({"username": "bench", "password": PASSWORD}).encode()
        await call(app, "POST", "/users", credentials)
        token = json.loads((await call(app, "POST", "/login", credentials))["body"])
        token = token["access_token"]
        for n in range(60):
            body = json.dumps({"description": f"bench {n}", "metadata": {"n": n}}).encode()
            created = await call(app, "POST", "/todos", body, token)
        single = f"/todos/{json.loads(created['body'])['uid']}"
        new = json.dumps({"description": "bench", "metadata": {"n": 1}}).encode()
        for method, path, query, body, status in (
            ("GET", single, b"", b"", 200),
            ("GET", "/todos", b"limit=50", b"", 200),
            ("POST", "/todos", b"", new, 201),
        ):
            for _ in range(50):
                await call(app, method, path, body, token, query)
            os.getppid()  # callgrind writes what came before, and counts afresh
            for _ in range(requests):
                answer = await call(app, method, path, body, token, query)
            os.getppid()
            assert answer["status"] == status, answer

    asyncio.run(run())


def measure(source: Path, requests: int) -> dict[str, float]:
    """Instructions per request, by phase, of the nimbus in `source`."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("bench.instructions counts with valgrind: apt-get install valgrind")
    with tempfile.TemporaryDirectory(prefix="nimbus-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        # None of the caller's NIMBUS_* settings: the same embedded store and defaults for
        # either tree.
        inherited = {k: v for k, v in os.environ.items() if not k.upper().startswith("NIMBUS_")}
        env = inherited | {
            "PYTHONHASHSEED": "0",
            # That tree's nimbus first, then this tree's bench; no .env in the working directory.
            "PYTHONPATH": os.pathsep.join([str(source / "src"), str(ROOT)]),
            "BENCH_NIMBUS_FROM": str(source / "src"),
            "NIMBUS_DATA_DIR": str(Path(tmp) / "data"),
            "NIMBUS_SECRET_KEY": "bench-" * 8,
        }
        counted = subprocess.run(
            [valgrind, "--tool=callgrind", "--dump-before=getppid",
             f"--callgrind-out-file={out}", sys.executable, "-m", "bench.instructions",
             "--serve", str(requests)],
            check=False, capture_output=True, text=True, env=env, cwd=tmp,
        )  # fmt: skip
        if counted.returncode != 0:
            raise SystemExit(f"the measured process failed:\n{counted.stderr[-4000:]}")
        counts = callgrind.per_request(out, len(PHASES), requests)
    return dict(zip(PHASES, counts, strict=True))


def run(base: str, requests: int) -> str:
    with tempfile.TemporaryDirectory(prefix="nimbus-base-") as workdir:
        tree = Path(workdir) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(tree), base],
            cwd=ROOT,
            check=True,
        )
        try:
            before = measure(tree, requests)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
            )
    after = measure(ROOT, requests)
    lines = [
        f"{base} (before) against the working tree (after), in process on SQLite, {requests} "
        "requests a phase: instructions per request (callgrind)",
        "",
        "| request | before | after | after / before |",
        "|---|---:|---:|---:|",
    ]
    for name in PHASES:
        lines.append(
            f"| {name} | {before[name]:,.0f} | {after[name]:,.0f} "
            f"| {after[name] / before[name]:.3f} |"
        )
    return "\n".join(lines)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("a whole number, at least 1")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD", help="the commit to compare with")
    parser.add_argument("--requests", type=_positive, default=100, help="requests counted a phase")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        _serve(args.serve)
        return
    print(run(args.base, args.requests))


if __name__ == "__main__":
    main()
