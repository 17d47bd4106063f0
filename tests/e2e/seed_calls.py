"""Run a seed's documented curl calls, as written, against a real server."""

import json
import shlex
import subprocess
from typing import Any


def curl(command: str, seed_base: str, base: str, *extra: str) -> tuple[int, Any]:
    """Run `command` (a seed's curl call, its base URL `seed_base` swapped for `base`) with
    `extra` arguments after it; returns the HTTP status and the JSON body (None if empty)."""
    assert seed_base in command
    written = command.replace(seed_base, base)
    options = " ".join(shlex.quote(arg) for arg in extra)
    result = subprocess.run(
        ["bash", "-c", f"{written} {options} -sS -w '\\n%{{http_code}}'"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(body) if body.strip() else None
