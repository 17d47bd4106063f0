"""nimbus's metrics on Lambda: CloudWatch Embedded Metric Format lines on stdout.

CloudWatch Logs makes metrics of the lines a function writes in this format, so counting costs
no API call and adds no latency. The names are those of /metrics (nimbus.api.prometheus); what
Prometheus derives from a histogram's buckets, CloudWatch derives from the values themselves.
A request's counts are gathered while it runs and written with its access record (the
`request` call): one line for the request, and one per set of dimensions of the rest.
"""

import json
import sys
import time
from typing import Any, TextIO

from nimbus.metrics import LoginOutcome, MailOutcome

Dimensions = tuple[tuple[str, str], ...]


class Emf:
    """The sink on Lambda, which serves one request at a time per process."""

    def __init__(self, namespace: str, stream: TextIO | None = None) -> None:
        self.namespace = namespace
        self._stream = stream
        # What the request in progress counted: by dimensions, by metric name, its unit and
        # its values.
        self._pending: dict[Dimensions, dict[str, tuple[str, list[float]]]] = {}

    def _add(self, name: str, unit: str, value: float, dimensions: Dimensions = ()) -> None:
        metrics = self._pending.setdefault(dimensions, {})
        metrics.setdefault(name, (unit, []))[1].append(value)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Write the request's documents: its own, then one for each set of dimensions the
        other counts came with (a login's outcome, a store error's kind)."""
        lines = [
            self._document(
                (("method", method), ("route", route or "-"), ("status", str(status))),
                {"nimbus_http_request_duration_seconds": ("Seconds", [seconds])},
            )
        ]
        lines += [self._document(dims, metrics) for dims, metrics in self._pending.items()]
        self._pending.clear()
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write("".join(lines))
        stream.flush()

    def _document(self, dimensions: Dimensions, metrics: dict[str, tuple[str, list[float]]]) -> str:
        document: dict[str, Any] = dict(dimensions)
        for name, (_, values) in metrics.items():
            document[name] = values[0] if len(values) == 1 else values
        names = [{"Name": name, "Unit": unit} for name, (unit, _) in metrics.items()]
        document["_aws"] = {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": self.namespace,
                    "Dimensions": [[key for key, _ in dimensions]],
                    "Metrics": names,
                }
            ],
        }
        return json.dumps(document, separators=(",", ":")) + "\n"

    def login(self, outcome: LoginOutcome) -> None:
        self._add("nimbus_logins_total", "Count", 1, (("outcome", outcome),))

    def hash_wait(self, seconds: float) -> None:
        self._add("nimbus_password_hash_wait_seconds", "Seconds", seconds)

    def store_error(self, kind: str) -> None:
        self._add("nimbus_store_errors_total", "Count", 1, (("kind", kind),))

    def audit_failure(self) -> None:
        self._add("nimbus_audit_write_failures_total", "Count", 1)

    def mail(self, outcome: MailOutcome) -> None:
        self._add("nimbus_mails_total", "Count", 1, (("outcome", outcome),))

    def pool_in_use(self, change: int) -> None:
        pass  # DynamoDB keeps no pool of connections to count

    def pool_size(self, size: int) -> None:
        pass

    def close(self) -> None:
        pass  # each line is written whole when its invocation ends
