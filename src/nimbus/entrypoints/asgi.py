"""Factory for ASGI servers: `uvicorn --factory nimbus.entrypoints.asgi:app`."""

from fastapi import FastAPI

from nimbus.api.app import create_app
from nimbus.bootstrap import build


def app() -> FastAPI:
    return create_app(build())
