"""AWS clients, from one botocore session per process.

Each session loads botocore's endpoint and service data anew (about 40 ms of a Lambda cold
start), and a session is not safe to share between threads while it builds clients, so they
are built one at a time. botocore, not boto3: boto3's import also loads s3transfer (0.2 s).
"""

import threading
from functools import cache
from typing import Any

_lock = threading.Lock()


@cache
def _session() -> Any:
    from botocore.session import get_session

    return get_session()


def client(service: str, **options: Any) -> Any:
    with _lock:
        return _session().create_client(service, **options)
