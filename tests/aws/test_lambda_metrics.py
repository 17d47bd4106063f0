"""Metrics on Lambda: each request writes CloudWatch Embedded Metric Format lines on stdout, as
CloudWatch Logs reads them (the format's specification), with the names /metrics uses."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nimbus.bootstrap import build
from nimbus.entrypoints.aws_lambda import make_handler
from nimbus.settings import Settings
from tests.aws.events import LambdaTransport
from tests.backends import database_url
from tests.support import PASSWORD, make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    with database_url("dynamodb", tmp_path) as url:
        settings = make_settings(tmp_path / "data", database_url=url, metrics_namespace="app/x")
        build(settings).close()
        yield settings


def documents(text: str) -> list[dict[str, Any]]:
    """Every EMF document in `text`, each checked against the specification's rules."""
    found = []
    for line in text.splitlines():
        document = json.loads(line)
        metadata = document["_aws"]
        assert isinstance(metadata["Timestamp"], int)
        for directive in metadata["CloudWatchMetrics"]:
            assert directive["Namespace"] == "app/x"
            for dimension_set in directive["Dimensions"]:
                for key in dimension_set:
                    assert isinstance(document[key], str), (key, document)
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                values = value if isinstance(value, list) else [value]
                assert values, document
                assert all(isinstance(v, int | float) for v in values), document
                assert metric["Unit"] in {"Count", "Seconds"}
        found.append(document)
    return found


def test_each_request_writes_its_metrics(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    transport = LambdaTransport(make_handler(settings), payload="2.0", stage="$default")
    with httpx.Client(transport=transport, base_url="https://api.example.com") as http:
        http.post("/users", json={"username": "alice", "password": PASSWORD})
        capsys.readouterr()
        ok = http.post("/login", json={"username": "alice", "password": PASSWORD})
        refused = http.post("/login", json={"username": "alice", "password": "wrong" * 4})
        auth = {"Authorization": f"Bearer {ok.json()['access_token']}"}
        uid = http.post("/todos", json={"description": "milk"}, headers=auth).json()["uid"]
        assert http.get(f"/todos/{uid}", headers=auth).status_code == 200
    assert refused.status_code == 401
    lines = documents(capsys.readouterr().out)

    requests = [d for d in lines if "nimbus_http_request_duration_seconds" in d]
    assert [(d["method"], d["route"], d["status"]) for d in requests] == [
        ("POST", "/login", "200"),
        ("POST", "/login", "401"),
        ("POST", "/todos", "201"),
        ("GET", "/todos/{uid}", "200"),
    ]
    assert all(0 < d["nimbus_http_request_duration_seconds"] < 60 for d in requests)
    assert [d["outcome"] for d in lines if "nimbus_logins_total" in d] == [
        "ok",
        "bad_credentials",
    ]
    assert [d for d in lines if "nimbus_password_hash_wait_seconds" in d]
    assert not [line for line in lines if uid in json.dumps(line)]


def test_an_empty_namespace_writes_no_metrics(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = make_handler(settings.model_copy(update={"metrics_namespace": ""}))
    transport = LambdaTransport(handler, payload="1.0", stage="prod")
    with httpx.Client(transport=transport, base_url="https://api.example.com") as http:
        assert http.get("/health").status_code == 200
    assert "_aws" not in capsys.readouterr().out
