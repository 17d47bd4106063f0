from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from nimbus.domain.audit import AuditKind


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    at: datetime
    kind: AuditKind
    actor: str | None = Field(
        description="Who did it: a user's id; null for the operator (the command line) or "
        "someone not signed in"
    )
    subject: str | None = Field(
        description="Whom or what it was done to: a user's id, or a credential's access key id"
    )
    client: str | None = Field(description="The client's address")
    request_id: str | None = Field(description="The X-Request-ID of the request")
    detail: dict[str, str] = Field(description="A few facts, never a secret (the new role, ...)")
