"""Lambda cold start: process start to the first authenticated API response.

Builds the Lambda package the way `sam build` does (Makefile: the locked dependencies and
nimbus, compiled to bytecode), then times, in fresh processes and interleaved so that machine
noise hits all alike:

- python:       the bare interpreter starting and exiting;
- hello:        a FastAPI hello-world route behind Mangum, from the same package (the ceiling);
- nimbus:       `GET /todos/{uid}` with a bearer token through nimbus's Lambda handler, on the
                DynamoDB backend (moto's server on 127.0.0.1) with the key in SSM, as deployed;
- nimbus, no .pyc: the same package without its bytecode, as a package built without it runs
                on Lambda's read-only /var/task.

Run: .venv/bin/python -m bench.coldstart [--runs N]
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

# The child: import the handler, answer one event, check the answer.
INVOKE = """
import json, sys
module, event = sys.argv[1], json.load(open(sys.argv[2]))
handler = __import__(module, fromlist=["handler"]).handler
answer = handler(event, None)
if answer["statusCode"] != 200:
    sys.exit(f"{module}: {answer['statusCode']} {answer.get('body')}")
"""


def build_package(target: Path) -> None:
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
        cwd=ROOT,
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


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{args}: {result.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        package = Path(scratch) / "package"
        build_package(package)
        no_pyc = Path(scratch) / "package-no-pyc"
        without_bytecode(package, no_pyc)

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
            "python": ([python, "-s", "-c", "pass"], with_package),
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
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(options.runs):
            for name, (args, env) in cases.items():
                times[name].append(timed(args, env))

    hello = statistics.median(times["hello"])
    print(f"Lambda cold start, median of {options.runs} runs, {sys.version.split()[0]}")
    print("| process | median ms | min ms | ratio to hello |")
    print("|---|---:|---:|---:|")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"| {name} | {median * 1000:.0f} | {min(samples) * 1000:.0f} | {median / hello:.2f} |"
        )


if __name__ == "__main__":
    main()
