from fastapi import APIRouter
from pydantic import BaseModel

from nimbus.api.deps import ContainerDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/health")
async def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/health/ready", responses={503: {"description": "Storage is unreachable"}})
def ready(container: ContainerDep) -> Health:
    """Readiness: the store answers too (503 when it does not)."""
    container.storage.ping()
    return Health(status="ok")
