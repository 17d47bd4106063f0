"""Storage backends, chosen by the scheme of NIMBUS_DATABASE_URL.

Each backend's module is imported only when its scheme is used, so a Lambda package never
imports a PostgreSQL driver and a laptop never imports the AWS client.
"""

import importlib

from nimbus.storage.base import Storage

_BACKENDS = {
    "sqlite": "nimbus.storage.sqlite",
    "postgresql": "nimbus.storage.postgres",
    "postgres": "nimbus.storage.postgres",
    "dynamodb": "nimbus.storage.dynamodb",
}


def open_storage(url: str, *, timeout: float | None = None) -> Storage:
    """The store at `url`. `timeout` (seconds) bounds how long PostgreSQL may take to hand a
    request a connection; the other backends have their own bounds."""
    scheme = url.partition(":")[0].lower()
    try:
        module_name = _BACKENDS[scheme]
    except KeyError:
        # Configuration errors are one line for a user; the lookup's own error adds nothing.
        known = ", ".join(f"{name}://" for name in _BACKENDS)
        raise ValueError(f"unsupported database URL scheme {scheme!r} (expected {known})") from None
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # One line for a user, naming the missing module: the import's traceback adds nothing.
        extra = module_name.rsplit(".", 1)[-1]
        raise ValueError(
            f"{scheme}:// needs {exc.name}: install nimbus-api[{extra}]"
            f" (uv sync --inexact --no-dev --extra {extra})"
        ) from None
    if timeout is not None and module_name == _BACKENDS["postgresql"]:
        storage: Storage = module.open_url(url, timeout=timeout)
    else:
        storage = module.open_url(url)
    return storage
