"""`nimbus serve`'s log as a log shipper reads it: one JSON record per line, and one access
record per request, with its request id and none of its secrets."""

from pathlib import Path

import httpx

from tests.support import nimbus_serve

PASSWORD = "correct horse battery"
AGENT = "access-log-test/1.0"


def test_each_request_is_one_json_access_record_naming_its_route(tmp_path: Path) -> None:
    with (
        nimbus_serve(tmp_path / "data", NIMBUS_MAX_BODY_BYTES="1000") as served,
        httpx.Client(base_url=served.url, headers={"User-Agent": AGENT}) as http,
    ):
        alice = http.post("/users", json={"username": "alice", "password": PASSWORD}).json()
        token = http.post("/login", json={"username": "alice", "password": PASSWORD})
        access = token.json()["access_token"]
        auth = {"Authorization": f"Bearer {access}"}
        uid = http.post("/todos", json={"description": "milk"}, headers=auth).json()["uid"]
        read = http.get(f"/todos/{uid}", headers=auth | {"X-Request-ID": "trace-42.a"})
        made_up = http.get("/todos/nope", headers=auth | {"X-Request-ID": "not plain!"})
        too_big = http.post("/todos", content=b"x" * 2000, headers=auth)
    assert read.status_code == 200
    assert read.headers["X-Request-ID"] == "trace-42.a"
    assert made_up.status_code == 404
    made_up_id = made_up.headers["X-Request-ID"]
    assert len(made_up_id) == 32
    assert too_big.status_code == 413
    assert too_big.headers["X-Request-ID"]

    lines = [line for line in served.log.splitlines() if line.strip()]
    records = served.records()
    assert len(records) == len(lines), served.log  # every line is one JSON record
    access_records = [
        r for r in records if r["logger"] == "nimbus.access" and r["route"] != "/health"
    ]
    assert len(access_records) == 6, access_records
    by_id = {record["request_id"]: record for record in access_records}
    assert by_id["trace-42.a"] == by_id["trace-42.a"] | {
        "level": "INFO",
        "message": "GET /todos/{uid} 200",
        "method": "GET",
        "route": "/todos/{uid}",
        "status": 200,
        "principal": alice["id"],
        "client": "127.0.0.1",
        "user_agent": AGENT,
    }
    assert isinstance(by_id["trace-42.a"]["duration_ms"], float)
    assert by_id["trace-42.a"]["time"].endswith("Z")
    assert by_id[made_up_id]["status"] == 404
    assert (
        by_id[too_big.headers["X-Request-ID"]] | {"route": None, "status": 413}
        == by_id[too_big.headers["X-Request-ID"]]
    )
    assert [r["route"] for r in access_records[:3]] == ["/users", "/login", "/todos"]
    # No path, token, password or refresh token reaches the log.
    for secret in (uid, access, PASSWORD, token.json()["refresh_token"]):
        assert secret not in served.log
