from fastapi import APIRouter, Request
from pydantic import BaseModel

from nimbus.api.deps import container_of
from nimbus.api.errors import COMMON_RESPONSES
from nimbus.api.routing import LeanRoute

router = APIRouter(route_class=LeanRoute, tags=["health"], responses=COMMON_RESPONSES)


class Health(BaseModel):
    status: str


@router.get("/health")
async def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get(
    "/health/ready", responses={503: {"description": "The store cannot be reached or written"}}
)
async def ready(request: Request) -> Health:
    """Readiness: the store answers and takes writes (503 when it does not)."""
    container = container_of(request)
    await container.run(container.storage.ping)
    return Health(status="ok")
