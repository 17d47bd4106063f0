"""`nimbus serve` (and so the container image, which runs it) takes the client's address from a
forwarded header only when NIMBUS_FORWARDED_ALLOW_IPS trusts the peer."""

from pathlib import Path

import httpx
import pytest

from tests.support import PASSWORD, nimbus_serve


def _login(url: str, client: str, password: str) -> int:
    response = httpx.post(
        f"{url}/login",
        json={"username": "alice", "password": password},
        headers={"X-Forwarded-For": client},
    )
    return response.status_code


@pytest.mark.parametrize(("trusted", "other_client"), [("127.0.0.1", 200), ("", 429)])
def test_nimbus_serve_honours_forwarded_addresses_only_from_trusted_proxies(
    tmp_path: Path, trusted: str, other_client: int
) -> None:
    with nimbus_serve(
        tmp_path / "data",
        NIMBUS_LOGIN_MAX_FAILURES_PER_CLIENT="2",
        NIMBUS_FORWARDED_ALLOW_IPS=trusted,  # empty: none trusted
    ) as served:
        httpx.post(f"{served.url}/users", json={"username": "alice", "password": PASSWORD})
        assert [_login(served.url, "198.51.100.1", "wrong") for _ in range(2)] == [401, 401]
        assert _login(served.url, "198.51.100.1", PASSWORD) == 429
        assert _login(served.url, "198.51.100.2", PASSWORD) == other_client
