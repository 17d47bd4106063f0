"""A hard bound on one send: socket timeouts bound each read and write, not a whole SMTP
conversation (a server may answer a byte at a time), nor a DNS look-up, which no timeout
reaches. The send runs on a thread of its own and the caller waits for it at most `timeout`;
past that, `abort` cuts the connection and the caller gets MailError."""

import contextvars
import threading
from collections.abc import Callable

from nimbus.mail.message import MailError


def within(
    timeout: float, what: str, work: Callable[[], None], abort: Callable[[], None] | None = None
) -> None:
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the caller, re-raised there
            failure.append(exc)
        finally:
            done.set()

    context = contextvars.copy_context()  # its records carry the caller's request id
    thread = threading.Thread(target=context.run, args=(run,), name="nimbus-mail-send")
    thread.daemon = True  # a send stuck in DNS never holds the process's exit
    thread.start()
    if not done.wait(timeout):
        if abort is not None:
            abort()
        raise MailError(f"{what}: no answer within {timeout:g} s")
    if failure:
        raise failure[0]
