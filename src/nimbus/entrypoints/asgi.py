"""Factory for ASGI servers: `uvicorn --factory nimbus.entrypoints.asgi:app`."""

from fastapi import FastAPI

from nimbus import tracing
from nimbus.api.app import create_app
from nimbus.bootstrap import build
from nimbus.logs import configure
from nimbus.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    # In each worker: uvicorn starts them as new processes, with logging as Python leaves it.
    configure(settings.log_format, settings.log_level)
    tracing.configure()  # before the build: the stores are wrapped in spans when traces are on
    return create_app(build(settings))
