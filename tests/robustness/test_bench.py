"""The load test runs, end to end, in its short mode: every scenario gets answers and none of
them is an error. Its timings are read by people (docs/performance.md), never asserted here."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.load import report

ROOT = Path(__file__).parents[2]


def _bench(tmp_path: Path, module: str, *options: str, timeout: int) -> tuple[str, Any]:
    """Run a benchmark as people do: what it printed, and the results it wrote as JSON."""
    output = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", module, *options, "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout, json.loads(output.read_text())


@pytest.mark.alone  # its 1-second windows need their CPUs: beside other tests, none may end
def test_the_load_test_runs_and_every_request_succeeds(tmp_path: Path) -> None:
    printed, results = _bench(tmp_path, "bench.load", "--short", timeout=600)
    names = [row["name"] for row in results["throughput"]]
    assert names == [
        "hello world, async (the ceiling)",
        "hello world, thread pool",
        "GET /health",
        "GET /todos/{uid}",
        "GET /todos?limit=50",
        "POST /todos",
        "POST /login",
    ]
    for row in results["throughput"]:
        assert row["requests"] > 0, row
        assert row["errors"] == 0, row
        assert row["ratio"] > 0, row
    pages = {(page["endpoint"], page["page"], page["rows"]) for page in results["pages"]}
    assert pages == {
        (endpoint, where, rows)
        for endpoint in ("GET /todos", "GET /messages")
        for where in ("first", "middle")
        for rows in (100, 1000)
    }
    assert all(page["requests"] > 0 and page["errors"] == 0 for page in results["pages"])
    assert printed.strip() == report(results)


def test_the_soak_runs_and_every_request_succeeds(tmp_path: Path) -> None:
    options = ["--duration", "8", "--warmup", "3", "--clients", "3"]
    _, results = _bench(tmp_path, "bench.soak", *options, timeout=120)
    assert results["requests"] > 100, results
    assert results["errors"] == 0, results
    assert results["rss_end_mib"] > 0
    assert isinstance(results["slope_mib_per_min"], float)


def test_the_overhead_benchmark_serves_every_phase() -> None:
    """bench.overhead's measured process, without valgrind (which counts, in the benchmark):
    each phase answers its requests."""
    run = subprocess.run(
        [sys.executable, "-m", "bench.overhead", "--serve", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def _serve_instructions(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.instructions", "--serve", "5"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_instructions_benchmark_serves_what_it_counts(tmp_path: Path) -> None:
    """bench.instructions' measured process, without valgrind: the requests it counts answer,
    from the nimbus it was pointed at."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("NIMBUS_")}
    env = inherited | {
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "BENCH_NIMBUS_FROM": str(ROOT / "src"),
        "NIMBUS_DATA_DIR": str(tmp_path / "data"),
        "NIMBUS_SECRET_KEY": "bench-" * 8,
    }
    served = _serve_instructions(env, tmp_path)
    assert served.returncode == 0, served.stderr
    refused = _serve_instructions(env | {"BENCH_NIMBUS_FROM": str(tmp_path)}, tmp_path)
    assert refused.returncode != 0
    assert "AssertionError" in refused.stderr
