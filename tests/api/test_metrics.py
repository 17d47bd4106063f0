"""GET /metrics: absent unless NIMBUS_METRICS_TOKEN is set, then only for that bearer token,
in Prometheus's text format as its own parser reads it."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from nimbus.bootstrap import build
from tests.support import PASSWORD, live_server, make_settings

TOKEN = "metrics-token-0123456789"
pytestmark = pytest.mark.store_independent


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[httpx.Client]:
    container = build(
        make_settings(tmp_path / "data", metrics_token=TOKEN, login_max_failures_per_client=2)
    )
    try:
        with live_server(container) as url, httpx.Client(base_url=url) as http:
            yield http
    finally:
        container.close()


def scrape(http: httpx.Client) -> str:
    response = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return response.text


def test_without_a_token_there_is_no_metrics_endpoint(client: httpx.Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token-0123456789", TOKEN, f"Basic {TOKEN}"]
)
def test_metrics_need_the_token_as_a_bearer(
    served: httpx.Client, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = served.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "message": "The metrics need the metrics token",
        "code": "unauthorized",
    }
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in response.text


def test_requests_are_counted_by_route_template_method_and_status(served: httpx.Client) -> None:
    served.post("/users", json={"username": "alice", "password": PASSWORD})
    login = served.post("/login", json={"username": "alice", "password": PASSWORD}).json()
    auth = {"Authorization": f"Bearer {login['access_token']}"}
    uid = served.post("/todos", json={"description": "milk"}, headers=auth).json()["uid"]
    before = scrape(served)
    for _ in range(3):
        assert served.get(f"/todos/{uid}", headers=auth).status_code == 200
    assert served.get("/todos/nope", headers=auth).status_code == 404
    assert served.get("/no/such/path").status_code == 404
    after = scrape(served)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    def answered(**labels: str) -> float:
        return delta("nimbus_http_request_duration_seconds_count", **labels)

    read = {"route": "/todos/{uid}", "method": "GET"}
    assert answered(**read, status="200") == 3
    assert answered(**read, status="404") == 1
    # A path no route matches is counted under no template, so ids cannot swell the labels.
    assert answered(route="", method="GET", status="404") == 1
    assert delta("nimbus_http_request_duration_seconds_sum", **read, status="200") > 0
    assert delta("nimbus_http_request_duration_seconds_bucket", **read, status="200",
                 le="+Inf") == 3  # fmt: skip
    assert not [key for key in samples(after) if uid in str(key)]
    # The scrape before is counted too, once its answer has been sent.
    assert answered(route="/metrics", method="GET", status="200") == 1
    # A sign-up and a login each hashed once, waiting for a free slot.
    assert value(after, "nimbus_password_hash_wait_seconds_count") >= 2


def test_the_token_must_be_long(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="metrics_token"):
        make_settings(tmp_path, metrics_token="short")


def test_logins_are_counted_by_outcome(served: httpx.Client) -> None:
    served.post("/users", json={"username": "alice", "password": PASSWORD})
    before = scrape(served)
    assert served.post("/login", json={"username": "alice", "password": PASSWORD}).is_success
    for _ in range(2):
        wrong = served.post("/login", json={"username": "alice", "password": "wrong" * 3})
        assert wrong.status_code == 401
    throttled = served.post("/login", json={"username": "alice", "password": PASSWORD})
    assert throttled.status_code == 429
    after = scrape(served)
    for outcome, count in (("ok", 1), ("bad_credentials", 2), ("throttled", 1)):
        moved = value(after, "nimbus_logins_total", outcome=outcome) - value(
            before, "nimbus_logins_total", outcome=outcome
        )
        assert moved == count, outcome


def test_requests_counted_in_batches_read_as_one_observation_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sink counts requests itself and hands them on in batches: a scrape reads the same
    buckets, count and sum as the library's own observe() would have made."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from nimbus.api import prometheus

    monkeypatch.delenv(prometheus.MULTIPROCESS_DIR, raising=False)
    sink = prometheus.Prometheus()
    reference = CollectorRegistry()
    histogram = Histogram(
        "nimbus_http_request_duration_seconds",
        "reference",
        ("route", "method", "status"),
        buckets=prometheus._REQUEST_BUCKETS,
        registry=reference,
    )
    durations = [0.0004, 0.001, 0.0011, 0.003, 0.02, 0.75, 2.5, 9.0, 0.001]
    for number, seconds in enumerate(durations):
        status = 200 if number % 3 else 404
        sink.request("GET", "/todos/{uid}", status, seconds)
        histogram.labels("/todos/{uid}", "GET", str(status)).observe(seconds)
    ours = [
        line
        for line in sink.exposition().decode().splitlines()
        if line.startswith("nimbus_http_request_duration_seconds_")
    ]
    theirs = [
        line
        for line in generate_latest(reference).decode().splitlines()
        if line.startswith("nimbus_http_request_duration_seconds_") and "_created" not in line
    ]
    assert sorted(line for line in ours if "_created" not in line) == sorted(theirs)
    assert any(
        'le="0.001"' in line and 'status="200"' in line and line.endswith(" 2.0") for line in ours
    )
    # A second scrape adds nothing: a batch is handed on once.
    again = [line for line in sink.exposition().decode().splitlines() if line in ours]
    assert len(again) == len(ours)
    sink.close()
