"""Side by side: this working tree against an earlier commit, on the busiest routes, in one run.

A change's effect on throughput is a few hundredths of a ratio, less than one machine's drift
between two runs of bench.load. Here both versions serve at once (`nimbus serve`, one worker
each, pinned to the same CPU, each on its own fresh SQLite file), and every round measures the
ceiling (bench.hello) and then each version in turn, the order alternating from round to
round; a row shows the median ratio to the ceiling over the rounds.

`--base .` serves the working tree on both sides, to compare settings instead: `--before
NAME=VALUE` and `--after NAME=VALUE` (each repeatable) set a side's environment. What logging
and metrics cost, say:

    .venv/bin/python -m bench.sidebyside --base . --before NIMBUS_LOG_LEVEL=WARNING \
        --after NIMBUS_METRICS_TOKEN=bench-metrics-token-0123

Run: .venv/bin/python -m bench.sidebyside [--base REV] [--rounds N] [--duration S] [--only TEXT]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench.load import BIN, CONNECTIONS, PASSWORD, ROOT, Load, Scenario, _cpus, _env, _server

HELLO = Scenario("hello world, async (the ceiling)", "/hello")


def _worktree(rev: str, into: Path) -> Path:
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(into), rev], cwd=ROOT, check=True
    )
    return into


def _scenarios(url: str) -> list[Scenario]:
    """The bench user, a full page of todos, and the busiest routes, made over HTTP so that
    each version seeds its own store its own way."""
    with httpx.Client(base_url=url, timeout=30) as http:
        http.post("/users", json={"username": "bench", "password": PASSWORD}).raise_for_status()
        login = http.post("/login", json={"username": "bench", "password": PASSWORD})
        login.raise_for_status()
        auth = (("Authorization", f"Bearer {login.json()['access_token']}"),)
        headers = dict(auth)
        uid = ""
        for n in range(50):
            created = http.post("/todos", json={"description": f"todo {n}"}, headers=headers)
            created.raise_for_status()
            uid = created.json()["uid"]
    body = json.dumps({"description": "bench"})
    return [
        Scenario("GET /todos/{uid}", f"/todos/{uid}", headers=auth),
        Scenario("GET /todos?limit=50", "/todos?limit=50", headers=auth),
        Scenario("POST /todos", "/todos", "POST", body, auth),
    ]


def _compare(
    load: Load,
    hello_url: str,
    urls: dict[str, str],
    scenarios: dict[str, list[Scenario]],
    index: int,
    rounds: int,
    seconds: int,
) -> dict[str, list[float]]:
    """Each version's ratios to the ceiling on scenario `index`, one per round."""
    ratios: dict[str, list[float]] = {version: [] for version in urls}
    for version, url in urls.items():  # warm-up
        load.run(url, scenarios[version][index], connections=CONNECTIONS, seconds=1)
    for round_ in range(rounds):
        order = list(urls) if round_ % 2 == 0 else list(reversed(urls))
        for version in order:
            ceiling = load.run(hello_url, HELLO, connections=CONNECTIONS, seconds=seconds)
            scenario = scenarios[version][index]
            measured = load.run(urls[version], scenario, connections=CONNECTIONS, seconds=seconds)
            if measured.errors:
                raise RuntimeError(f"{version} {scenario.name}: {measured.errors} errors")
            ratios[version].append(measured.rps / ceiling.rps)
    print(f"  {scenarios['after'][index].name}: done", file=sys.stderr)
    return ratios


def run(
    base: str,
    rounds: int,
    seconds: int,
    settings: dict[str, dict[str, str]] | None = None,
    only: str | None = None,
) -> str:
    settings = settings or {}
    server_cpus, load_cpus = _cpus()
    with tempfile.TemporaryDirectory(prefix="nimbus-sidebyside-") as tmp:
        workdir = Path(tmp)
        tree = ROOT if base == "." else _worktree(base, workdir / "base")
        try:
            load = Load(load_cpus, workdir)
            envs = {}
            for name, src in (("before", tree / "src"), ("after", ROOT / "src")):
                (workdir / name).mkdir()
                env = _env(workdir / name, f"sqlite:///{workdir / name / 'bench.db'}")
                envs[name] = (
                    env
                    | {"PYTHONPATH": str(src), "NIMBUS_ALLOW_SIGNUP": "true"}
                    | settings.get(name, {})
                )
            uvicorn = [str(BIN / "uvicorn"), "bench.hello:app", "--no-proxy-headers",
                       "--no-server-header"]  # fmt: skip
            nimbus = [str(BIN / "nimbus"), "serve"]
            with (
                _server(uvicorn, envs["after"], server_cpus) as (hello_url, _),
                _server(nimbus, envs["before"], server_cpus) as (before_url, _),
                _server(nimbus, envs["after"], server_cpus) as (after_url, _),
            ):
                urls = {"before": before_url, "after": after_url}
                scenarios = {name: _scenarios(url) for name, url in urls.items()}
                ratios = {
                    scenario.name: _compare(
                        load, hello_url, urls, scenarios, index, rounds, seconds
                    )
                    for index, scenario in enumerate(scenarios["after"])
                    if only is None or only in scenario.name
                }
        finally:
            if tree != ROOT:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
                )
    sides = {
        name: " ".join(f"{key}={value}" for key, value in settings.get(name, {}).items())
        for name in ("before", "after")
    }
    before_name = "the working tree" if base == "." else base
    lines = [
        f"{before_name} (before{', ' + sides['before'] if sides['before'] else ''}) against "
        f"the working tree (after{', ' + sides['after'] if sides['after'] else ''}): "
        f"{rounds} rounds of {seconds} s, "
        f"{CONNECTIONS} connections, load from {load.tool}; median ratio to the ceiling",
        "",
        "| request | before | after | after / before |",
        "|---|---:|---:|---:|",
    ]
    for name, by_version in ratios.items():
        before = statistics.median(by_version["before"])
        after = statistics.median(by_version["after"])
        lines.append(f"| {name} | {before:.2f} | {after:.2f} | {after / before:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=int, default=4, help="seconds per measurement")
    for side in ("before", "after"):
        parser.add_argument(
            f"--{side}",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help=f"an environment variable of the {side} side's server",
        )
    parser.add_argument("--only", help="only the requests whose name holds this text")
    args = parser.parse_args()
    settings = {
        side: dict(item.split("=", 1) for item in getattr(args, side))
        for side in ("before", "after")
    }
    print(run(args.base, args.rounds, args.duration, settings, args.only))


if __name__ == "__main__":
    main()
