"""Lambda cold start: process start to the first authenticated API response.

Builds the Lambda package the way `sam build` does (Makefile: the locked dependencies and
nimbus, compiled to bytecode), then times, in fresh processes and interleaved so that machine
noise hits all alike, two spans from the moment the process is spawned: to the moment the
handler returns its answer (what a Lambda cold start costs: nothing exits between requests),
and to the moment the process has exited (which adds the final garbage collection and
teardown, a cost Lambda never pays). The cases:

- python:       the bare interpreter starting and exiting;
- hello:        a FastAPI hello-world route behind Mangum, from the same package (the ceiling);
- nimbus:       `GET /todos/{uid}` with a bearer token through nimbus's Lambda handler, on the
                DynamoDB backend (moto's server on 127.0.0.1) with the key in SSM, as deployed;
- nimbus, no .pyc: the same package without its bytecode, as a package built without it runs
                on Lambda's read-only /var/task;
- nimbus @ DIR: with --compare DIR, nimbus from another checkout (`git worktree add DIR REV`),
                built the same way, against the same store and token.

For python the answer is the moment its script starts. Both clocks are CLOCK_MONOTONIC, which
parent and child share.

Run: .venv/bin/python -m bench.coldstart [--runs N] [--compare DIR]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from tests.aws.events import rest_event  # noqa: E402
from tests.backends import dynamodb_endpoint  # noqa: E402

HELLO = """
from fastapi import FastAPI
from mangum import Mangum

app = FastAPI()


@app.get("/hello")
def hello():
    return {"hello": "world"}


handler = Mangum(app, lifespan="off")
"""

# The child: import the handler, answer one event, note the time, check the answer. The time
# goes to a file of its own: the handler's log lines share stdout and stderr.
INVOKE = """
import json, sys, time
module, event = sys.argv[1], json.load(open(sys.argv[2]))
handler = __import__(module, fromlist=["handler"]).handler
answer = handler(event, None)
answered = time.clock_gettime(time.CLOCK_MONOTONIC)
with open(sys.argv[3], "w") as out:
    out.write(repr(answered))
if answer["statusCode"] != 200:
    sys.exit(f"{module}: {answer['statusCode']} {answer.get('body')}")
"""
BARE = """
import sys, time
answered = time.clock_gettime(time.CLOCK_MONOTONIC)
with open(sys.argv[1], "w") as out:
    out.write(repr(answered))
"""


def build_package(target: Path, source: Path = ROOT) -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run(
        [
            "make",
            "-s",
            "lambda-package",
            f"ARTIFACTS_DIR={target}",
            f"PYTHON={sys.executable}",
            f"RUNTIME_PYTHON={version}",
        ],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (target / "hello.py").write_text(HELLO)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
         str(target / "hello.py")],
        check=True,
    )  # fmt: skip


def without_bytecode(package: Path, target: Path) -> None:
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__"))


def prepare_store(package: Path, env: dict[str, str]) -> str:
    """Tables, the SSM key, a user and a todo, made through the package's own nimbus; returns
    the event file for an authenticated read of that todo."""
    script = """
import json, sys
from nimbus.bootstrap import build
from nimbus.security.keys import ssm_parameter
from nimbus.ssm import create_ssm_key
from nimbus.settings import Settings
settings = Settings()
create_ssm_key(ssm_parameter(settings.secret_key.get_secret_value()), settings.region)
container = build(settings)
container.users.create(username="bench", password="correct horse battery")
pair = container.auth.login(name="bench", password="correct horse battery",
                            client="bench")
principal = container.auth.authenticate(pair.access.token)
todo = container.todos.create(principal, "cold start", {})
print(json.dumps({"token": pair.access.token, "uid": todo.uid}))
"""
    out = subprocess.run(
        [_python(), "-s", "-c", script], env=env, check=True, capture_output=True, text=True
    ).stdout
    made = json.loads(out)
    event = rest_event(
        "GET",
        f"/todos/{made['uid']}",
        headers=[("Authorization", f"Bearer {made['token']}")],
    )
    path = package.parent / "todo-event.json"
    path.write_text(json.dumps(event))
    return str(path)


def _python() -> str:
    # The interpreter without the project's virtualenv: only the package is importable.
    return getattr(sys, "_base_executable", sys.executable)


def timed(args: list[str], env: dict[str, str], stamp: Path) -> tuple[float, float]:
    """Seconds from spawning the process to its answer, and to its exit."""
    stamp.unlink(missing_ok=True)
    started = time.clock_gettime(time.CLOCK_MONOTONIC)
    result = subprocess.run(
        [*args, str(stamp)], env=env, capture_output=True, text=True, check=False
    )
    exited = time.clock_gettime(time.CLOCK_MONOTONIC)
    if result.returncode != 0:
        raise SystemExit(f"{args}: {result.stderr.strip()}")
    answered = float(stamp.read_text())
    return answered - started, exited - started


def _row(name: str, samples: list[tuple[float, float]], hello: list[tuple[float, float]]) -> str:
    cells = [name]
    for column in (0, 1):
        these = [sample[column] for sample in samples]
        base = [sample[column] for sample in hello]
        median, least = statistics.median(these), min(these)
        cells += [
            f"{median * 1000:.0f}",
            f"{least * 1000:.0f}",
            f"{median / statistics.median(base):.2f}",
            f"{least / min(base):.2f}",
        ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--compare",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="another checkout of nimbus to build and time alongside (repeatable)",
    )
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        package = Path(scratch) / "package"
        build_package(package)
        no_pyc = Path(scratch) / "package-no-pyc"
        without_bytecode(package, no_pyc)
        others = {}
        for index, source in enumerate(options.compare):
            others[source] = Path(scratch) / f"package-{index}"
            build_package(others[source], source.resolve())

        endpoint = dynamodb_endpoint()
        base = {
            "PATH": os.environ["PATH"],
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": "nimbus-bench-api",
            "PYTHONDONTWRITEBYTECODE": "1",  # /var/task is read-only
            "NIMBUS_DATABASE_URL": (
                f"dynamodb://?region=us-east-1&table_prefix=bench-&endpoint_url={endpoint}"
            ),
            "NIMBUS_SECRET_KEY": "ssm:/nimbus/bench/secret-key",
            "AWS_ENDPOINT_URL_SSM": endpoint,
        }
        with_package = base | {"PYTHONPATH": str(package)}
        todo_event = prepare_store(package, with_package)
        hello_event = Path(scratch) / "hello-event.json"
        hello_event.write_text(json.dumps(rest_event("GET", "/hello")))

        python = _python()
        cases = {
            "python": ([python, "-s", "-c", BARE], with_package),
            "hello": ([python, "-s", "-c", INVOKE, "hello", str(hello_event)], with_package),
            "nimbus": (
                [python, "-s", "-c", INVOKE, "nimbus.entrypoints.aws_lambda", todo_event],
                with_package,
            ),
            "nimbus, no .pyc": (
                [python, "-s", "-c", INVOKE, "nimbus.entrypoints.aws_lambda", todo_event],
                base | {"PYTHONPATH": str(no_pyc)},
            ),
        }
        for source, other in others.items():
            cases[f"nimbus @ {source}"] = (
                [python, "-s", "-c", INVOKE, "nimbus.entrypoints.aws_lambda", todo_event],
                base | {"PYTHONPATH": str(other)},
            )
        stamp = Path(scratch) / "answered"
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(options.runs):
            for name, (args, env) in cases.items():
                times[name].append(timed(args, env, stamp))

    print(f"Lambda cold start, {options.runs} runs, {sys.version.split()[0]}: ms from spawning")
    print("the process to the handler's answer, and to the process's exit; ratios to hello's")
    print("median and to hello's min")
    print(
        "| process | answer median | answer min | ratio | ratio of mins "
        "| exit median | exit min | ratio | ratio of mins |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, samples in times.items():
        print(_row(name, samples, times["hello"]))


if __name__ == "__main__":
    main()
