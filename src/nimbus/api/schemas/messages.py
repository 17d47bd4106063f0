from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from nimbus.domain.messages import TEXT_MAX_LENGTH


def _printable(text: str) -> str:
    if not text.strip():
        raise ValueError("text must not be blank")
    if "\x00" in text:
        raise ValueError("text must not contain NUL characters")
    return text


# Kept exactly as written (no trimming): the board shows what the author typed.
Text = Annotated[str, Field(min_length=1, max_length=TEXT_MAX_LENGTH), AfterValidator(_printable)]


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    text: str
    author: str = Field(description="The author's username")
    created_at: datetime
