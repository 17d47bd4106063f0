"""Kept-alive HTTP/1.1 connections to one endpoint, over the standard library's http.client.

What nimbus's AWS calls (nimbus.aws, nimbus.mail.ses) need of an HTTP client: a thread-safe
pool, a connect and a read timeout, TLS checked against the system's CAs or AWS_CA_BUNDLE, and
the environment's proxy (HTTP_PROXY / HTTPS_PROXY / NO_PROXY, as botocore reads them). urllib3
does all of it too, but importing it costs a twentieth of a Lambda cold start; http.client and
ssl are loaded by then anyway.
"""

import base64
import os
import select
import ssl
import threading
import weakref
from email.message import Message
from http.client import HTTPConnection, HTTPException, HTTPSConnection, RemoteDisconnected
from urllib.parse import SplitResult, unquote, urlsplit

from nimbus.values import frozen


class CannotConnect(Exception):
    """No connection could be made (refused, unreachable, timed out, TLS refused): nothing was
    sent, so the request may be tried again."""


class NoAnswer(Exception):
    """The request was, or may have been, sent, but no whole answer came back."""


@frozen
class Response:
    status: int
    headers: Message  # names looked up in any case
    data: bytes


class Endpoint:
    """POSTs to one scheme, host and port, on up to `size` idle connections kept for reuse."""

    def __init__(self, url: str, *, size: int, ca_bundle: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._context = ssl.create_default_context(cafile=ca_bundle) if self._tls else None
        self._proxy = _proxy_for(parts)
        self._proxy_headers = _proxy_authorization(self._proxy)
        # Through a proxy, a plain-HTTP request names its whole URL; HTTPS goes in a tunnel.
        self._origin = f"http://{parts.netloc}" if self._proxy and not self._tls else ""
        self._size = size
        self._idle: list[HTTPConnection] = []
        self._lock = threading.Lock()
        # An endpoint dropped without close() still closes its connections.
        weakref.finalize(self, _close_all, self._idle)

    def post(
        self,
        path: str,
        body: bytes,
        headers: dict[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> Response:
        """The answer; CannotConnect, or NoAnswer once the request may have gone."""
        connection = self._idle_connection()
        if connection is not None:
            try:
                return self._exchange(connection, path, body, headers, read_timeout)
            except _ClosedWhileIdle:
                pass  # the server closed it as the request went: never read, so sent again
        connection = self._connect(connect_timeout)
        try:
            return self._exchange(connection, path, body, headers, read_timeout)
        except _ClosedWhileIdle as exc:
            raise NoAnswer(str(exc.__cause__)) from exc.__cause__

    def close(self) -> None:
        with self._lock:
            _close_all(self._idle)

    def _exchange(
        self,
        connection: HTTPConnection,
        path: str,
        body: bytes,
        headers: dict[str, str],
        read_timeout: float,
    ) -> Response:
        try:
            if connection.sock is not None:
                connection.sock.settimeout(read_timeout)
            connection.request("POST", self._origin + path, body, headers | self._plain_proxy())
            answer = connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, RemoteDisconnected) as exc:
            connection.close()
            raise _ClosedWhileIdle from exc
        except (OSError, HTTPException) as exc:
            connection.close()
            raise NoAnswer(_reason(exc)) from exc
        try:
            data = answer.read()
        except (OSError, HTTPException) as exc:
            connection.close()
            raise NoAnswer(_reason(exc)) from exc
        if answer.will_close:
            connection.close()
        else:
            self._keep(connection)
        return Response(answer.status, answer.headers, data)

    def _plain_proxy(self) -> dict[str, str]:
        return self._proxy_headers if self._origin else {}

    def _idle_connection(self) -> HTTPConnection | None:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if _still_open(connection):
                    return connection
                connection.close()
        return None

    def _keep(self, connection: HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self, timeout: float) -> HTTPConnection:
        host, port = self._host, self._port
        if self._proxy is not None:
            host, port = self._proxy.hostname or "", self._proxy.port or 80
        connection: HTTPConnection
        if self._tls:
            connection = HTTPSConnection(host, port, timeout=timeout, context=self._context)
            if self._proxy is not None:
                connection.set_tunnel(self._host, self._port, headers=self._proxy_headers)
        else:
            connection = HTTPConnection(host, port, timeout=timeout)
        try:
            connection.connect()  # the TCP connection, the proxy's tunnel and TLS
        except (OSError, HTTPException) as exc:
            connection.close()
            raise CannotConnect(_reason(exc)) from exc
        return connection


class _ClosedWhileIdle(Exception):
    pass


def _close_all(idle: list[HTTPConnection]) -> None:
    while idle:
        idle.pop().close()


def _still_open(connection: HTTPConnection) -> bool:
    """An idle connection is readable only when the server has closed it (or sent what it
    should not have): either way it is not reused."""
    if connection.sock is None:
        return False
    poller = select.poll()
    poller.register(connection.sock, select.POLLIN)
    return not poller.poll(0)


def _proxy_for(target: SplitResult) -> SplitResult | None:
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return None
    from urllib.request import getproxies, proxy_bypass  # only where a proxy may be set

    proxy = getproxies().get(target.scheme)
    if not proxy or proxy_bypass(target.hostname or ""):
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(
            f"{target.scheme.upper()}_PROXY: give the proxy's http:// URL (a proxy reached over"
            " TLS is not supported)"
        )
    return parts


def _proxy_authorization(proxy: SplitResult | None) -> dict[str, str]:
    if proxy is None or proxy.username is None:
        return {}
    pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
    return {"Proxy-Authorization": f"Basic {base64.b64encode(pair.encode()).decode()}"}


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
