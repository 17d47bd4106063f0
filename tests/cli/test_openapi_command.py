"""`nimbus openapi`: the document the server serves, with no server and no store."""

import json
from pathlib import Path

import httpx

from nimbus.bootstrap import build
from tests.support import live_server, make_settings, run_cli


def _served_document(data_dir: Path) -> object:
    container = build(make_settings(data_dir))
    try:
        with live_server(container) as base:
            response = httpx.get(f"{base}/openapi.json", timeout=30)
    finally:
        container.close()
    assert response.status_code == 200, response.text
    return response.json()


def test_it_prints_what_the_server_serves_at_openapi_json(tmp_path: Path) -> None:
    printed = run_cli(tmp_path / "data", "openapi")
    assert printed.returncode == 0, printed.stderr
    assert printed.stderr == ""
    document = json.loads(printed.stdout)
    assert document["openapi"].startswith("3.")
    assert document == _served_document(tmp_path / "served")


def test_it_touches_no_store_key_or_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    printed = run_cli(data_dir, "openapi")
    assert printed.returncode == 0, printed.stderr
    assert list(tmp_path.iterdir()) == []  # no data dir, database or key file made


def test_output_writes_the_file_and_nothing_to_stdout(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    written = run_cli(tmp_path / "data", "openapi", "--output", str(target))
    assert written.returncode == 0, written.stderr
    assert written.stdout == ""
    assert written.stderr == f"OpenAPI document written to {target}\n"
    assert json.loads(target.read_text()) == json.loads(
        run_cli(tmp_path / "data", "openapi").stdout
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["openapi.json"]


def test_an_unwritable_output_fails_in_one_line(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "data", "openapi", "--output", str(tmp_path / "no" / "such.json"))
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1
    assert "such.json" in result.stderr
    assert "Traceback" not in result.stderr
