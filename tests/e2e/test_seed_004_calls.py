"""Seed 004's documented calls (the SigV4 products API), run with curl against `nimbus serve`,
and a signed walk through every page with curl's own SigV4 signer, as a user would."""

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import BACKENDS, database_url
from tests.support import nimbus_serve, run_cli

BASE = "https://${ApiGatewayRestApi}.execute-api.${AWS::Region}.amazonaws.com/${sls:stage}"
INDEX = "curl --request GET --url " + BASE + "/index"
PRODUCTS = "curl --request GET --url " + BASE + "/products"
KEYS = re.compile(r"\AAWS_ACCESS_KEY_ID=(\S+)\nAWS_SECRET_ACCESS_KEY=(\S+)\n\Z")


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`nimbus serve` with 25 products and a service credential; yields the URL and
    curl's --user for the credential."""
    with database_url(request.param, tmp_path) as database:
        data_dir = tmp_path / "data"
        env = {"NIMBUS_DATABASE_URL": database}
        assert run_cli(data_dir, "seed", "products", "--count", "25", env=env).returncode == 0
        created = run_cli(data_dir, "credentials", "create", "--name", "curl", env=env)
        keys = KEYS.match(created.stdout)
        assert keys, created.stdout
        with nimbus_serve(data_dir, NIMBUS_DATABASE_URL=database) as served:
            yield served.url, f"{keys[1]}:{keys[2]}"


def run(command: str, *options: str) -> tuple[int, dict[str, str], str]:
    """Run a curl command line; returns the status, the headers and the body."""
    result = subprocess.run(
        ["bash", "-c", command + "".join(f" '{o}'" for o in options) + " -sS -D /dev/stderr"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status_line, *lines = result.stderr.strip().splitlines()
    fields = [line.split(": ", 1) for line in lines if ": " in line]
    headers = {name.lower(): value for name, value in fields}
    return int(status_line.split()[1]), headers, result.stdout


def test_the_seed_004_calls_work_as_written(server: tuple[str, str]) -> None:
    url, _ = server
    status, headers, page = run(INDEX.replace(BASE, url))
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert "<title>" in page
    assert page.count("<tr") > 1

    status, headers, body = run(PRODUCTS.replace(BASE, url))
    assert status == 403
    assert headers["content-type"] == "application/json"
    assert '"message":"Missing Authentication Token"' in body


def test_curl_signs_its_way_through_every_page(server: tuple[str, str]) -> None:
    """curl signs the query as it is written: the Link URLs are written in the order SigV4
    sorts them in, so following one needs no rewriting."""
    url, user = server
    signed = ("--aws-sigv4", "aws:amz:us-east-1:execute-api", "--user", user)
    seen: list[str] = []
    address = f"{url}/products?limit=10"
    while address:
        status, headers, body = run(f"curl --url '{address}'", *signed)
        assert status == 200, body
        seen += re.findall(r'"id":"([^"]+)"', body)
        link = headers.get("link")
        address = url + link[1 : link.index(">")] if link else ""
    assert len(seen) == len(set(seen)) == 25
