"""nimbus.connections over real sockets: connections kept alive and not reused once the server
has closed them, TLS checked against a CA bundle, HTTPS through an HTTP proxy's tunnel with
its credentials, and which failures may be tried again."""

import select
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nimbus import aws
from nimbus.aws import AwsUnreachable
from nimbus.connections import CannotConnect, Endpoint, NoAnswer
from tests.mail.servers import Certificates, make_certificates
from tests.scripted_aws import Answer, ScriptedAws, scripted_aws
from tests.support import free_port


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)


@pytest.fixture
def server() -> Iterator[ScriptedAws]:
    with scripted_aws() as script:
        yield script


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path)


@pytest.fixture
def tls_server(certificates: Certificates) -> Iterator[ScriptedAws]:
    with scripted_aws(tls=certificates.server_context()) as script:
        yield script


def test_connections_are_kept_alive(server: ScriptedAws) -> None:
    server.answers += [Answer(200, {"n": 1}), Answer(200, {"n": 2})]
    client = aws.dynamodb("eu-west-1", server.url)
    assert [client.call("GetItem")["n"], client.call("GetItem")["n"]] == [1, 2]
    first, second = server.received
    assert first.peer == second.peer
    client.close()


def test_a_connection_the_server_closed_is_not_reused(server: ScriptedAws) -> None:
    server.answers += [Answer(200, {"n": 1}, drop=True), Answer(200, {"n": 2})]
    client = aws.dynamodb("eu-west-1", server.url)
    assert client.call("GetItem") == {"n": 1}
    assert client.call("GetItem") == {"n": 2}
    first, second = server.received  # sent once each
    assert first.peer != second.peer
    client.close()


def test_tls_is_checked_against_the_ca_bundle(
    tls_server: ScriptedAws, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificates.ca_file))
    tls_server.answers += [Answer(200, {"n": 1}), Answer(200, {"n": 2})]
    client = aws.dynamodb("eu-west-1", tls_server.url)
    assert [client.call("GetItem")["n"], client.call("GetItem")["n"]] == [1, 2]
    assert tls_server.received[0].peer == tls_server.received[1].peer
    client.close()


def test_a_certificate_no_trusted_ca_signed_is_refused_before_anything_is_sent(
    tls_server: ScriptedAws,
) -> None:
    endpoint = Endpoint(tls_server.url, size=1)
    with pytest.raises(CannotConnect, match="CERTIFICATE_VERIFY_FAILED"):
        endpoint.post("/", b"{}", {}, connect_timeout=2, read_timeout=2)
    assert tls_server.received == []


def test_no_listener_is_cannot_connect() -> None:
    endpoint = Endpoint(f"http://127.0.0.1:{free_port()}", size=1)
    with pytest.raises(CannotConnect):
        endpoint.post("/", b"{}", {}, connect_timeout=2, read_timeout=2)


def test_an_answer_that_is_late_is_no_answer(server: ScriptedAws) -> None:
    server.answers.append(Answer(200, {}, delay=1))
    endpoint = Endpoint(server.url, size=1)
    with pytest.raises(NoAnswer):
        endpoint.post("/", b"{}", {}, connect_timeout=2, read_timeout=0.2)
    assert len(server.received) == 1


@dataclass
class Proxy:
    """A CONNECT proxy on 127.0.0.1 that records each tunnel's request and headers."""

    port: int
    tunnels: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def _pipe(one: socket.socket, other: socket.socket) -> None:
    with one, other:
        while True:
            readable, _, _ = select.select([one, other], [], [], 10)
            if not readable:
                return
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (other if source is one else one).sendall(data)


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    record = Proxy(listener.getsockname()[1])
    stop = threading.Event()

    def tunnel(client: socket.socket) -> None:
        reader = client.makefile("rb")
        request = reader.readline().decode().strip()
        headers = {}
        while (line := reader.readline().decode().strip()) != "":
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        record.tunnels.append((request, headers))
        host, _, port = request.split()[1].rpartition(":")
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        _pipe(client, upstream)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=tunnel, args=(client,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_https_goes_through_the_proxys_tunnel_with_its_credentials(
    tls_server: ScriptedAws,
    certificates: Certificates,
    proxy: Proxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificates.ca_file))
    monkeypatch.setenv("HTTPS_PROXY", f"http://ann:p%40ss@127.0.0.1:{proxy.port}")
    tls_server.answers += [Answer(200, {"n": 1}), Answer(200, {"n": 2})]
    # localhost: the proxy is asked for it by name, and the certificate names it too.
    url = tls_server.url.replace("127.0.0.1", "localhost")
    client = aws.dynamodb("eu-west-1", url)
    assert [client.call("GetItem")["n"], client.call("GetItem")["n"]] == [1, 2]
    port = url.rpartition(":")[2]
    [(request, headers)] = proxy.tunnels  # one tunnel, kept alive
    assert request == f"CONNECT localhost:{port} HTTP/1.0"
    assert headers["proxy-authorization"] == "Basic YW5uOnBAc3M="  # ann:p@ss
    assert all("proxy-authorization" not in sent.headers for sent in tls_server.received)
    client.close()


def test_a_proxy_reached_over_tls_is_refused_with_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.example:3128")
    with pytest.raises(ValueError, match="HTTPS_PROXY: give the proxy's http:// URL"):
        aws.dynamodb("eu-west-1")
    with pytest.raises(AwsUnreachable):  # a plain-HTTP endpoint does not use it
        aws.dynamodb("eu-west-1", f"http://127.0.0.1:{free_port()}").call("GetItem")
