"""Mail handed off, so that no request waits for a mail server: `submit` returns at once and
a few threads send in the background; `close` sends what is still waiting.

A failure is logged (a WARNING on "nimbus.mail" naming the recipient's domain and the cause,
never the address, the body or the link: a link carries a token) and counted; it never
reaches the requester. On Lambda nothing runs once the answer has gone, so `inline=True`
sends in the caller, within the mailer's bound, and logs a failure the same way.
"""

import contextvars
import logging
import queue
import threading
import time

from nimbus import metrics
from nimbus.mail.message import Mailer, MailError, Message

log = logging.getLogger("nimbus.mail")

_STOP = None


class MailQueue:
    def __init__(
        self, mailer: Mailer, *, inline: bool = False, workers: int = 2, max_pending: int = 100
    ) -> None:
        if workers < 1 or max_pending < 1:
            raise ValueError("a mail queue needs a worker and room for a mail")
        self.mailer = mailer
        self.inline = inline
        self.sent = 0
        self.failed = 0  # sends that raised
        self.dropped = 0  # never tried: the queue was full, or closed
        self._workers = workers
        self._pending: queue.Queue[tuple[contextvars.Context, Message] | None] = queue.Queue(
            max_pending
        )
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._counts = threading.Lock()
        self._closed = False

    def submit(self, message: Message) -> None:
        """Send `message` soon (inline: now, within the mailer's bound). Never raises, never
        waits for a server: a failure is logged and counted."""
        if self.inline:
            self._deliver(message)
            return
        with self._lock:
            if self._closed:
                self._drop(message, "the mail queue is closed")
                return
            if not self._threads:  # started on first use: none in a process that mails nothing
                self._start()
            try:
                self._pending.put_nowait((contextvars.copy_context(), message))
            except queue.Full:
                self._drop(message, f"the mail queue is full ({self._pending.maxsize} waiting)")

    def close(self, timeout: float | None = None) -> None:
        """Send what waits (at most `timeout` seconds; None: however long), then stop. A mail
        still waiting after `timeout` is dropped, and logged."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(deadline - time.monotonic(), 0.001)

        try:
            for _ in threads:
                self._pending.put(_STOP, timeout=left())  # behind every mail already waiting
        except queue.Full:
            pass  # out of time with the queue still full: what waits is dropped below
        for thread in threads:
            thread.join(left())
        while True:
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._drop(item[1], "the mail queue closed before it was sent")
        for thread in threads:  # any still sending stop after it
            if thread.is_alive():
                try:
                    self._pending.put_nowait(_STOP)
                except queue.Full:
                    break
        self.mailer.close()

    def _start(self) -> None:
        for number in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"nimbus-mail-{number}")
            thread.daemon = True  # a server that never answers cannot hold the exit
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        while (item := self._pending.get()) is not None:
            context, message = item
            context.run(self._deliver, message)  # its records carry the request's id

    def _deliver(self, message: Message) -> None:
        try:
            self.mailer.send(message)
        except Exception as exc:
            with self._counts:
                self.failed += 1
            metrics.mail("failed")
            # A MailError's text names the server and the cause, never the address (its
            # domain stands in), a body or a link; anything else is named by its type alone.
            cause = str(exc) if isinstance(exc, MailError) else type(exc).__name__
            log.warning(
                "mail to a recipient at %s not sent: %s",
                message.domain,
                cause,
                extra={"fields": {"mail_domain": message.domain, "error": cause}},
            )
        else:
            with self._counts:
                self.sent += 1
            metrics.mail("sent")

    def _drop(self, message: Message, why: str) -> None:
        with self._counts:
            self.dropped += 1
        metrics.mail("dropped")
        log.warning(
            "mail to a recipient at %s not sent: %s",
            message.domain,
            why,
            extra={"fields": {"mail_domain": message.domain, "error": why}},
        )
