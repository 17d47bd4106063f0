"""Load test: nimbus against a hello-world ceiling on the same stack, in one run.

Two servers on 127.0.0.1, each one uvicorn worker started as users start them (`nimbus serve`
and `uvicorn bench.hello:app` with the same options), pinned to one CPU; the load comes from a
second process on the other CPUs. It measures

- throughput and latency: the ceiling (`GET /hello`, a coroutine on the event loop), the same
  route in the thread pool, `GET /health`, then nimbus's authenticated `GET /todos/{uid}`,
  `GET /todos?limit=50`, `POST /todos`, and `POST /login` with 32 clients at once (with the
  server's peak memory while they log in), each as a ratio to the ceiling;
- page latency: the first page and one from the middle of `GET /todos` and `GET /messages`
  with 100, 10,000 and 100,000 rows in the store (seeded through the store), one client.

Each throughput row also has the server's CPU time a request (its processes' user and system
time over the measurement) and the ceiling's as a share of it, the CPU ratio: on a machine
busy with other work, which skews requests/s (the scheduler shares a CPU out by threads, and
nimbus has more than the ceiling), that ratio holds up better.

The load generator is wrk when it is installed (C, event-driven: a few microseconds of CPU a
request, so the client does not cap what it measures on a small machine), else bench.loadgen,
a Python one whose own CPU use makes every ratio a lower bound. The store is SQLite (the
default); --database-url measures another. `--only TEXT` (repeatable) measures only the
requests whose name holds TEXT, and no page latency; `--workers N` runs both servers with N
workers each, on N CPUs (the load then shares them when the machine has no more);
`--ceiling-without-access-log` runs the hello-world without uvicorn's access log (about a
third of its CPU time a request), while nimbus writes its own access record.

Run: .venv/bin/python -m bench.load [--short] [--duration S] [--only TEXT] [--workers N]
     [--ceiling-without-access-log] [--database-url URL] [--json FILE]
"""

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
PASSWORD = "bench password 1"
CONNECTIONS = 32

# The benchmarks measure the work, not the rate limits (32 logins at once to one account, from
# one address, would otherwise be more than the limits let through at a time).
UNLIMITED = {
    "NIMBUS_LOGIN_MAX_FAILURES_PER_CLIENT": "1000000000",
    "NIMBUS_LOGIN_MAX_FAILURES_PER_ACCOUNT": "1000000000",
    "NIMBUS_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000000",
    "NIMBUS_SIGNUP_MAX_PER_ADDRESS": "1000000000",
    "NIMBUS_REFRESH_MAX_PER_ADDRESS": "1000000000",
    "NIMBUS_MESSAGES_MAX_PER_ACCOUNT": "1000000000",
}


@dataclass
class Measure:
    name: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    ratio: float | None = None  # requests/s as a share of the ceiling's
    note: str = ""
    # The server's CPU time a request (its processes' user and system time over the
    # measurement), and the ceiling's as a share of it: unlike requests/s, it holds up on a
    # machine that is busy with other work.
    cpu_us: float | None = None
    cpu_ratio: float | None = None


@dataclass
class Scenario:
    name: str
    path: str
    method: str = "GET"
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()


def _cpus(server: int = 1) -> tuple[set[int], set[int]]:
    """`server` CPUs for the server, the rest for the load; all of them for both when no CPU
    is left over."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) <= server:
        return set(cpus), set(cpus)
    return set(cpus[:server]), set(cpus[server:])


def _cpu_seconds(pid: int) -> float:
    """User and system time of a process, its threads and its descendants (the workers)."""
    return _cpu_ticks(pid) / os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
        total += int(fields[11]) + int(fields[12])
        total += sum(_cpu_ticks(int(child)) for child in children)
    return total


def _pinned(cpus: set[int]) -> Callable[[], None]:
    return lambda: os.sched_setaffinity(0, cpus)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _server(command: list[str], env: dict[str, str], cpus: set[int]) -> Iterator[tuple[str, int]]:
    """Start a server on a free port; yields its URL and pid."""
    port = _free_port()
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_pinned(cpus),  # before any thread starts there
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}")
            try:
                httpx.get(f"{url}/health" if "nimbus" in command[0] else f"{url}/hello")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not start") from None
                time.sleep(0.05)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


WRK_SCRIPT = """
wrk.method = os.getenv("BENCH_METHOD")
wrk.body = os.getenv("BENCH_BODY")
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"status_errors": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


class Load:
    def __init__(self, cpus: set[int], workdir: Path) -> None:
        self.cpus = cpus
        self.wrk = shutil.which("wrk")
        self.script = workdir / "bench.lua"
        self.script.write_text(WRK_SCRIPT)

    @property
    def tool(self) -> str:
        return "wrk" if self.wrk else "bench.loadgen (Python)"

    def run(
        self,
        url: str,
        scenario: Scenario,
        *,
        connections: int,
        seconds: int,
        pid: int | None = None,
    ) -> Measure:
        """The load on one scenario; with the server's `pid`, its CPU time a request too."""
        headers = [f"{name}: {value}" for name, value in scenario.headers]
        if scenario.body:
            headers.append("Content-Type: application/json")
        if self.wrk:
            command = [self.wrk, "-t", "1", "-c", str(connections), "-d", f"{seconds:.0f}s",
                       "--timeout", "30s", "-s", str(self.script)]  # fmt: skip
            for header in headers:
                command += ["-H", header]
            env = os.environ | {"BENCH_METHOD": scenario.method, "BENCH_BODY": scenario.body}
        else:
            command = [sys.executable, "-m", "bench.loadgen", "--method", scenario.method,
                       "--body", scenario.body, "--connections", str(connections),
                       "--duration", str(seconds)]  # fmt: skip
            for header in headers:
                command += ["--header", header]
            env = dict(os.environ)
        cpu_before = _cpu_seconds(pid) if pid else 0.0
        result = subprocess.run(
            [*command, url + scenario.path],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=True,
            timeout=seconds + 120,
            preexec_fn=_pinned(self.cpus),
        )
        cpu = _cpu_seconds(pid) - cpu_before if pid else None
        data = json.loads(result.stdout.strip().splitlines()[-1])
        return Measure(
            name=scenario.name,
            requests=int(data["requests"]),
            rps=data["requests"] / (data["duration_us"] / 1e6),
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            errors=int(data["status_errors"] + data["socket_errors"]),
            cpu_us=cpu / data["requests"] * 1e6 if cpu is not None and data["requests"] else None,
        )


class PeakMemory:
    """The highest resident set size of a process while the block runs, sampled."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.rss_kib())
            time.sleep(0.01)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _env(workdir: Path, database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NIMBUS_")}
    return (
        env
        | {
            "NIMBUS_DATA_DIR": str(workdir / "data"),
            "NIMBUS_DATABASE_URL": database_url,
            "NIMBUS_SECRET_KEY": secrets.token_urlsafe(48),
            "NIMBUS_ACCESS_TOKEN_TTL": "86400",
        }
        | UNLIMITED
    )


def _seed(env: dict[str, str], sizes: list[int]) -> dict[str, Any]:
    """The bench user with a full first page of todos, and one user per page-latency size;
    returns their ids. Through the services and stores, in this process."""
    from nimbus.bootstrap import build
    from nimbus.domain.todos import Todo, TodoState
    from nimbus.settings import Settings

    settings = Settings(
        env_file=None,
        data_dir=Path(env["NIMBUS_DATA_DIR"]),
        database_url=env["NIMBUS_DATABASE_URL"],
        secret_key=env["NIMBUS_SECRET_KEY"],
    )
    container = build(settings)
    try:
        seeded: dict[str, Any] = {}
        for name in ["bench", *(f"rows{size}" for size in sizes)]:
            user = container.users.create(username=name, password=PASSWORD)
            seeded[name] = user
        now = datetime.now(UTC)
        from nimbus.domain.ids import new_id

        def todos(owner: Any, count: int) -> list[str]:
            uids = []
            for n in range(count):
                uid = new_id()
                container.storage.todos.add(
                    Todo(uid=uid, owner=owner.id, username=owner.username,
                         description=f"todo {n}", state=TodoState.UNSTARTED,
                         metadata={"n": n}, created_at=now, updated_at=now, version=1)
                )  # fmt: skip
                uids.append(uid)
            return uids

        seeded["bench_todos"] = todos(seeded["bench"], 100)
        for size in sizes:
            seeded[f"todos{size}"] = todos(seeded[f"rows{size}"], size)
        return seeded
    finally:
        container.close()


def _seed_messages(env: dict[str, str], author: Any, count: int) -> list[str]:
    from nimbus.domain.ids import new_id
    from nimbus.domain.messages import Message
    from nimbus.storage import open_storage

    storage = open_storage(env["NIMBUS_DATABASE_URL"])
    now = datetime.now(UTC)
    ids = []
    try:
        for n in range(count):
            message = Message(id=new_id(), author_id=author.id, author=author.username,
                              text=f"message {n}", created_at=now)  # fmt: skip
            storage.messages.add(message)
            ids.append(message.id)
    finally:
        storage.close()
    return ids


def _token(url: str, username: str) -> str:
    response = httpx.post(f"{url}/login", json={"username": username, "password": PASSWORD})
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def run(args: argparse.Namespace) -> dict[str, Any]:
    from nimbus.domain.paging import encode_cursor

    seconds = 1 if args.short else args.duration
    sizes = [] if args.only else [100, 1000] if args.short else [100, 10_000, 100_000]
    server_cpus, load_cpus = _cpus(args.workers)
    results: dict[str, Any] = {
        "machine": _machine(),
        "short": args.short,
        "workers": args.workers,
        "ceiling_access_log": not args.ceiling_without_access_log,
    }
    with tempfile.TemporaryDirectory(prefix="nimbus-bench-") as tmp:
        workdir = Path(tmp)
        database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
        env = _env(workdir, database_url)
        load = Load(load_cpus, workdir)
        results["tool"] = load.tool
        seeded = _seed(env, sizes)

        rounds = 1 if args.short else 3
        ceilings: list[Measure] = []
        workers = ["--workers", str(args.workers)]
        quiet = ["--no-access-log"] if args.ceiling_without_access_log else []
        uvicorn = [str(BIN / "uvicorn"), "bench.hello:app", "--no-proxy-headers",
                   "--no-server-header", *workers, *quiet]  # fmt: skip
        hello = Scenario("hello world, async (the ceiling)", "/hello")

        def measure(url: str, pid: int, scenario: Scenario, *, at_least: int = 1) -> Measure:
            """Rounds of the ceiling then the scenario, back to back, so that whatever else the
            machine is doing hits both alike; the medians, and the median of the ratios. Each
            measurement lasts `at_least` seconds even in a short run."""
            window = max(seconds, at_least)
            load.run(url, scenario, connections=CONNECTIONS, seconds=1)  # warm-up
            pairs = []
            for _ in range(rounds):
                ceiling = load.run(hello_url, hello, connections=CONNECTIONS, seconds=window,
                                   pid=hello_pid)  # fmt: skip
                result = load.run(url, scenario, connections=CONNECTIONS, seconds=window, pid=pid)
                ceilings.append(ceiling)
                pairs.append((result, result.rps / ceiling.rps, ceiling))
            median = statistics.median_low(pair[1] for pair in pairs)
            result, _, ceiling = next(pair for pair in pairs if pair[1] == median)
            result.requests = sum(pair[0].requests for pair in pairs)
            result.errors = sum(pair[0].errors for pair in pairs)
            result.ratio = median
            cpu_ratios = [
                c.cpu_us / r.cpu_us for r, _, c in pairs if c.cpu_us is not None and r.cpu_us
            ]
            result.cpu_ratio = statistics.median(cpu_ratios) if cpu_ratios else None
            print(f"  {result.name}: {result.rps:.0f}/s, {median:.2f}", file=sys.stderr)
            return result

        throughput: list[Measure] = []
        with (
            _server(uvicorn, env, server_cpus) as (hello_url, hello_pid),
            _server([str(BIN / "nimbus"), "serve", *workers], env, server_cpus) as (url, pid),
        ):
            load.run(hello_url, hello, connections=CONNECTIONS, seconds=1)  # warm-up
            auth = (("Authorization", f"Bearer {_token(url, 'bench')}"),)
            uid = seeded["bench_todos"][-1]
            login = Scenario("POST /login", "/login", "POST",
                             json.dumps({"username": "bench", "password": PASSWORD}))  # fmt: skip
            for scenario in [
                Scenario("hello world, thread pool", "/hello-sync"),
                Scenario("GET /health", "/health"),
                Scenario("GET /todos/{uid}", f"/todos/{uid}", headers=auth),
                Scenario("GET /todos?limit=50", "/todos?limit=50", headers=auth),
                Scenario("POST /todos", "/todos", "POST",
                         json.dumps({"description": "bench"}), auth),
                login,
            ]:  # fmt: skip
                if args.only and not any(text in scenario.name for text in args.only):
                    continue
                if scenario is not login:
                    on_hello = scenario.path == "/hello-sync"
                    target = (hello_url, hello_pid) if on_hello else (url, pid)
                    throughput.append(measure(*target, scenario))
                    continue
                memory = PeakMemory(pid)
                before = memory.rss_kib()
                with memory:
                    # A login is tens of milliseconds of one CPU: 32 at once, and the warm-up's
                    # still queued, may none of them end within a one-second window.
                    logins = measure(url, pid, login, at_least=4)
                # With several workers, pid is their supervisor's: its memory, not theirs.
                logins.note = (
                    f"{CONNECTIONS} at once; server RSS {before / 1024:.0f} MiB before, "
                    f"peak {memory.peak_kib / 1024:.0f} MiB; {len(server_cpus)} CPU"
                )
                throughput.append(logins)
            ceiling = Measure(
                name=hello.name,
                requests=sum(c.requests for c in ceilings),
                rps=statistics.median(c.rps for c in ceilings),
                p50_ms=statistics.median(c.p50_ms for c in ceilings),
                p99_ms=statistics.median(c.p99_ms for c in ceilings),
                errors=sum(c.errors for c in ceilings),
                ratio=1.0,
                cpu_us=statistics.median(c.cpu_us or 0.0 for c in ceilings),
                cpu_ratio=1.0,
                note=f"median of {len(ceilings)} runs, one before each other measurement",
            )
            throughput.insert(0, ceiling)

            pages: list[dict[str, Any]] = []
            author = seeded["bench"]
            messages: list[str] = []
            page_seconds = 1 if args.short else 3
            for size in sizes:
                messages += _seed_messages(env, author, size - len(messages))
                owner_auth = (("Authorization", f"Bearer {_token(url, f'rows{size}')}"),)
                todos = seeded[f"todos{size}"]
                middle_todo = encode_cursor({"uid": sorted(todos)[size // 2]})
                middle_message = encode_cursor({"id": sorted(messages)[size // 2]})
                cases = [
                    ("GET /todos", "first", "/todos", owner_auth),
                    ("GET /todos", "middle", f"/todos?cursor={middle_todo}", owner_auth),
                    ("GET /messages", "first", "/messages", ()),
                    ("GET /messages", "middle", f"/messages?cursor={middle_message}", ()),
                ]
                for name, where, path, headers in cases:
                    result = load.run(url, Scenario(name, path, headers=headers),
                                      connections=1, seconds=page_seconds)  # fmt: skip
                    pages.append(
                        {"endpoint": name, "page": where, "rows": size, "p50_ms": result.p50_ms,
                         "p99_ms": result.p99_ms, "requests": result.requests,
                         "errors": result.errors}
                    )  # fmt: skip
    results["throughput"] = [asdict(result) for result in throughput]
    results["pages"] = pages
    return results


def report(results: dict[str, Any]) -> str:
    workers = results.get("workers", 1)
    lines = [
        f"Machine: {results['machine']}; load from {results['tool']}, "
        f"{CONNECTIONS} connections; "
        + (
            f"{workers} workers a server, on {workers} CPUs"
            if workers > 1
            else "server pinned to one CPU"
        )
        + ("" if results.get("ceiling_access_log", True) else "; ceiling without access log")
        + ("; SHORT RUN" if results["short"] else ""),
        "",
        "| request | requests/s | ratio to ceiling | p50 ms | p99 ms | p50 x ceiling "
        "| p99 x ceiling | errors | CPU µs a request | CPU ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ceiling = results["throughput"][0]
    for row in results["throughput"]:
        cpu = f"{row['cpu_us']:.0f}" if row.get("cpu_us") else "-"
        cpu_ratio = f"{row['cpu_ratio']:.2f}" if row.get("cpu_ratio") else "-"
        lines.append(
            f"| {row['name']} | {row['rps']:.0f} | {row['ratio']:.2f} | {row['p50_ms']:.2f} "
            f"| {row['p99_ms']:.2f} | {row['p50_ms'] / ceiling['p50_ms']:.1f} "
            f"| {row['p99_ms'] / ceiling['p99_ms']:.1f} | {row['errors']} | {cpu} | {cpu_ratio} |"
        )
    notes = [f"- {row['name']}: {row['note']}" for row in results["throughput"] if row["note"]]
    if notes:
        lines += ["", *notes]
    if not results["pages"]:
        return "\n".join(lines)
    lines += ["", "Page latency, one client (ms, p50 / p99):", ""]
    sizes = sorted({page["rows"] for page in results["pages"]})
    lines.append("| page | " + " | ".join(f"{size:,} rows" for size in sizes) + " |")
    lines.append("|---|" + "---:|" * len(sizes))
    keys = dict.fromkeys((page["endpoint"], page["page"]) for page in results["pages"])
    for endpoint, where in keys:
        cells = [
            f"{page['p50_ms']:.2f} / {page['p99_ms']:.2f}"
            for size in sizes
            for page in results["pages"]
            if (page["endpoint"], page["page"], page["rows"]) == (endpoint, where, size)
        ]
        lines.append(f"| {endpoint}, {where} page | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="a quick run, for CI")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--database-url", help="measure this store instead of a fresh SQLite")
    parser.add_argument(
        "--only", action="append", help="only the requests whose name holds this (repeatable)"
    )
    parser.add_argument("--workers", type=int, default=1, help="workers a server")
    parser.add_argument(
        "--ceiling-without-access-log",
        action="store_true",
        help="the hello-world without uvicorn's access log (nimbus still writes its own)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(report(results))


if __name__ == "__main__":
    main()
