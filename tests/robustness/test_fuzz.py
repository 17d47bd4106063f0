"""Schemathesis against the live OpenAPI document: every operation, with data that fits the
schema and data that does not, as a signed-in administrator (so admin routes get past 403),
a bounded number of examples each. No answer may be a 5xx or fall outside the published
schema (status code, content type, headers, body)."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, openapi
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import positive_data_acceptance

from nimbus.bootstrap import build
from nimbus.domain.users import Role
from tests.support import PASSWORD, live_server, log_in, make_settings

# Bounded for CI; NIMBUS_FUZZ_EXAMPLES=500 for a deeper run by hand.
MAX_EXAMPLES = int(os.environ.get("NIMBUS_FUZZ_EXAMPLES", "20"))


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The server's URL, and an administrator's Authorization header."""
    settings = make_settings(tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'db'}")
    container = build(settings)
    try:
        with live_server(container) as url, httpx.Client(base_url=url, timeout=30) as client:
            container.users.create(username="root", password=PASSWORD, role=Role.ADMIN)
            headers = {"Authorization": f"Bearer {log_in(client, 'root')}"}
            # Something for the listings to return.
            client.post("/todos", json={"description": "fuzzed"}, headers=headers)
            client.post("/messages", json={"text": "fuzzed"}, headers=headers)
            yield url, headers
    finally:
        container.close()


def _fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,  # nothing written into the working tree
        suppress_health_check=list(HealthCheck),
        derandomize=MAX_EXAMPLES <= 20,  # CI: the same examples on every run
    )
    def check(case: Any) -> None:
        # Every check but one: "schema-valid data is accepted" does not hold for an API whose
        # opaque values (a cursor, an If-Match tag) are valid strings that can still be wrong.
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    check()


def test_every_operation_keeps_the_published_contract(
    live: tuple[str, dict[str, str]],
) -> None:
    url, headers = live
    schema = openapi.from_url(f"{url}/openapi.json")
    paths = schema.raw_schema["paths"]
    published = {f"{method.upper()} {path}" for path, item in paths.items() for method in item}
    failures: list[str] = []
    fuzzed: set[str] = set()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"an operation schemathesis cannot read: {result.err()}")
            continue
        operation = result.ok()
        fuzzed.add(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, headers)
            except Unsatisfiable:
                pass  # nothing in this operation can be made invalid (no parameters, no body)
            except (Exception, BaseExceptionGroup) as error:  # gathered: one run shows them all
                failures.append(f"{operation.label} ({mode.value}): {error}")
    assert fuzzed == published
    assert not failures, "\n\n".join(failures)
