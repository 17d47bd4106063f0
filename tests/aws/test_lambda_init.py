"""The Lambda handler module's init, in a fresh interpreter as Lambda runs it: the collector is
off while the app is built, its objects are frozen, and the collector is on again after, also
when the build fails."""

import subprocess
import sys
from pathlib import Path

from tests.support import cli_env

PROBE = """
import gc, sys
try:
    import nimbus.entrypoints.aws_lambda
except Exception as exc:
    print("failed:", type(exc).__name__)
print("collecting:", gc.isenabled())
print("frozen:", gc.get_freeze_count() > 0)
"""


def _init(tmp_path: Path, **env: str) -> list[str]:
    run = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=cli_env(tmp_path, AWS_LAMBDA_FUNCTION_NAME="nimbus-test-api", **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return run.stdout.splitlines()


def test_init_builds_the_app_freezes_it_and_collects_again(tmp_path: Path) -> None:
    assert _init(tmp_path) == ["collecting: True", "frozen: True"]


def test_a_failed_init_leaves_the_collector_on(tmp_path: Path) -> None:
    lines = _init(tmp_path, NIMBUS_ACCESS_TOKEN_TTL="0")  # not a valid setting
    assert lines == ["failed: ValidationError", "collecting: True", "frozen: False"]
