"""What nimbus counts, and where the counts go: Prometheus text at /metrics for the HTTP server,
CloudWatch Embedded Metric Format lines on Lambda, nowhere when metrics are off.

Code that counts calls the functions here; a process chooses the sink once, at start-up
(`use`). Until it does, each call is a no-op.
"""

from typing import Literal, Protocol

LoginOutcome = Literal["ok", "bad_credentials", "throttled"]
MailOutcome = Literal["sent", "failed", "dropped"]


class Sink(Protocol):
    def request(self, method: str, route: str, status: int, seconds: float) -> None: ...

    def login(self, outcome: LoginOutcome) -> None: ...

    def hash_wait(self, seconds: float) -> None: ...

    def store_error(self, kind: str) -> None: ...

    def audit_failure(self) -> None: ...

    def mail(self, outcome: MailOutcome) -> None: ...

    def pool_in_use(self, change: int) -> None: ...

    def pool_size(self, size: int) -> None: ...

    def close(self) -> None: ...


class Off:
    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        pass

    def login(self, outcome: LoginOutcome) -> None:
        pass

    def hash_wait(self, seconds: float) -> None:
        pass

    def store_error(self, kind: str) -> None:
        pass

    def audit_failure(self) -> None:
        pass

    def mail(self, outcome: MailOutcome) -> None:
        pass

    def pool_in_use(self, change: int) -> None:
        pass

    def pool_size(self, size: int) -> None:
        pass

    def close(self) -> None:
        pass


_sink: Sink = Off()


def use(sink: Sink) -> None:
    global _sink
    _sink = sink


def sink() -> Sink:
    return _sink


def request(method: str, route: str, status: int, seconds: float) -> None:
    _sink.request(method, route, status, seconds)


def login(outcome: LoginOutcome) -> None:
    """A password login's outcome: signed in, refused, or refused unchecked by a throttle."""
    _sink.login(outcome)


def hash_wait(seconds: float) -> None:
    """How long a password hash waited for a free slot (nimbus.security.passwords)."""
    _sink.hash_wait(seconds)


def store_error(kind: str) -> None:
    """A store call that failed for want of the store, by kind: "busy", "pool_timeout",
    "connection", DynamoDB's error code (a throttle) or "unreachable"."""
    _sink.store_error(kind)


def audit_failure() -> None:
    """An audit event that could not be written (the request it belongs to goes on)."""
    _sink.audit_failure()


def mail(outcome: MailOutcome) -> None:
    """A mail handed to the sender: sent, failed (the server refused it, was unreachable or
    too slow), or dropped unsent (the queue was full, or closed)."""
    _sink.mail(outcome)


def pool_in_use(change: int) -> None:
    """A connection taken from the store's pool (+1) or given back (-1)."""
    _sink.pool_in_use(change)


def pool_size(size: int) -> None:
    """The most connections the store's pool holds."""
    _sink.pool_size(size)
