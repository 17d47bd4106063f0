from pydantic import BaseModel


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class ErrorBody(BaseModel):
    message: str
    code: str
    errors: list[FieldError] | None = None
