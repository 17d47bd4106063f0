"""Soak: a mixed load on one `nimbus serve` worker, and the slope of its memory over time.

Clients sign up and log in, create todos, update them with If-Match, page through them with
cursors, delete them, post and read messages and refresh their tokens, for --duration
seconds. The server's resident memory (VmRSS) is sampled every second; after --warmup seconds
the report gives its least-squares slope in MiB per minute (the goal: flat, about zero) and
the growth from the end of the warm-up to the end. The rate limits are raised for the run:
the soak measures memory, not the limits.

Run: .venv/bin/python -m bench.soak [--duration S] [--warmup S] [--clients N] [--json FILE]
"""

import argparse
import json
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.load import BIN, _cpus, _env, _machine, _server

PASSWORD = "soak password 1"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


WINDOW_SECONDS = 10


def _window_minima(samples: list[tuple[float, float]], seconds: int) -> list[tuple[float, float]]:
    """The lowest sample of each `seconds`, at the time it was taken."""
    windows: dict[int, tuple[float, float]] = {}
    for t, m in samples:
        window = int(t // seconds)
        if window not in windows or m < windows[window][1]:
            windows[window] = (t, m)
    return [windows[key] for key in sorted(windows)]


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) samples, in MiB per minute."""
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return 0.0
    return 60 * sum((t - mean_t) * (m - mean_m) for t, m in samples) / spread


class Client:
    """One user's session, doing a bit of everything in turn."""

    def __init__(self, url: str, name: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.name = name
        self.requests = 0
        self.errors = 0
        self.refresh_token = ""
        self.auth: dict[str, str] = {}
        self._call("POST", "/users", json={"username": name, "password": PASSWORD})
        self.log_in()

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        self.requests += 1
        response = self.http.request(method, path, **options)
        if response.status_code >= 500 or response.status_code == 429:
            self.errors += 1
        return response

    def log_in(self) -> None:
        body = self._call("POST", "/login", json={"username": self.name, "password": PASSWORD})
        tokens = body.json()
        self.auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        self.refresh_token = tokens["refresh_token"]

    def round(self, rng: random.Random) -> None:
        todo = self._call(
            "POST",
            "/todos",
            json={"description": "soak " * 5, "metadata": {"n": 1}},
            headers=self.auth,
        ).json()
        etag = f'"{todo["version"]}"'
        self._call(
            "PATCH",
            f"/todos/{todo['uid']}",
            json={"state": "started"},
            headers=self.auth | {"If-Match": etag},
        )
        page = self._call("GET", "/todos", params={"limit": 5}, headers=self.auth)
        link = page.headers.get("link")
        if link:
            self._call("GET", link[1 : link.index(">")], headers=self.auth)
        if rng.random() < 0.7:
            self._call("DELETE", f"/todos/{todo['uid']}", headers=self.auth)
        self._call("POST", "/messages", json={"text": "soak message"}, headers=self.auth)
        self._call("GET", "/messages", params={"limit": 10})
        if rng.random() < 0.2:
            answer = self._call("POST", "/auth/refresh", json={"refresh_token": self.refresh_token})
            if answer.status_code == 200:
                tokens = answer.json()
                self.auth = {"Authorization": f"Bearer {tokens['access_token']}"}
                self.refresh_token = tokens["refresh_token"]
        if rng.random() < 0.05:
            self.log_in()


def run(args: argparse.Namespace) -> dict[str, Any]:
    server_cpus, _ = _cpus()
    with tempfile.TemporaryDirectory(prefix="nimbus-soak-") as workdir:
        env = _env(Path(workdir), f"sqlite:///{workdir}/soak.db")
        with _server([str(BIN / "nimbus"), "serve"], env, server_cpus) as (url, pid):
            stop = threading.Event()
            clients: list[Client] = []

            def work(index: int) -> None:
                rng = random.Random(index)
                client = Client(url, f"soak{index}")
                clients.append(client)
                while not stop.is_set():
                    try:
                        client.round(rng)
                    except httpx.TransportError:
                        # Counted, and the client goes on: one that stopped would flatten
                        # the slope it is there to measure.
                        client.errors += 1

            threads = [threading.Thread(target=work, args=(n,)) for n in range(args.clients)]
            for thread in threads:
                thread.start()
            started = time.monotonic()
            samples: list[tuple[float, float]] = []
            while (elapsed := time.monotonic() - started) < args.duration:
                samples.append((elapsed, rss_mib(pid)))
                time.sleep(1)
            stop.set()
            for thread in threads:
                thread.join()
    steady = _window_minima([(t, m) for t, m in samples if t >= args.warmup], WINDOW_SECONDS)
    requests = sum(client.requests for client in clients)
    return {
        "machine": _machine(),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "clients": args.clients,
        "requests": requests,
        "errors": sum(client.errors for client in clients),
        "rps": round(requests / args.duration, 1),
        "rss_start_mib": round(samples[0][1], 1),
        "rss_after_warmup_mib": round(steady[0][1], 1),
        "rss_end_mib": round(steady[-1][1], 1),
        "slope_mib_per_min": round(slope_per_minute(steady), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=300, help="seconds of load")
    parser.add_argument("--warmup", type=int, default=60, help="seconds left out of the slope")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.warmup >= args.duration:
        parser.error("--warmup must be shorter than --duration")
    results = run(args)
    for key, value in results.items():
        print(f"{key}: {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
