"""moto's DynamoDB API over HTTP on 127.0.0.1, for the tests that need a DynamoDB-API server."""

import logging
import threading
from collections.abc import Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server


class MotoServer:
    """Serves one request at a time. moto checks a write's condition and then writes, in two
    steps: two requests served side by side can both pass the same `version = :v` condition,
    which DynamoDB never allows, and a test of lost updates would then fail at random.

    Its data lives in this process, so it is still there after a stop and a start on the same
    port.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self._lock = threading.Lock()
        self._app = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(
            "127.0.0.1", self.port, self._serialized, threaded=True,
            request_handler=MotoRequestHandler,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
        self._server = self._thread = None

    def _serialized(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self._lock:
            # Read the whole answer inside the lock: the app may produce it lazily.
            return list(self._app(environ, start_response))
