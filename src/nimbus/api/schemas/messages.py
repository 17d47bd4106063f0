from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from nimbus.api.schemas import NoNul
from nimbus.domain.messages import TEXT_MAX_LENGTH

# Kept exactly as written (no trimming): the board shows what the author typed.
Text = Annotated[str, Field(min_length=1, max_length=TEXT_MAX_LENGTH, pattern=r"\S"), NoNul]


class MessageCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": "Hello, board"}]}
    )

    text: Text


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    text: str
    author: str = Field(description="The author's username")
    created_at: datetime
