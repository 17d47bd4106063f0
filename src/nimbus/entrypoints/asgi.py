"""Factory for ASGI servers: `uvicorn --factory nimbus.entrypoints.asgi:app`."""

from fastapi import FastAPI

from nimbus.api.app import create_app
from nimbus.bootstrap import build
from nimbus.logs import configure
from nimbus.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    # In each worker: uvicorn starts them as new processes, with logging as Python leaves it.
    configure(settings.log_format, settings.log_level)
    return create_app(build(settings))
