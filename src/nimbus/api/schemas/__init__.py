from pydantic import AfterValidator, BaseModel


def _no_nul(text: str) -> str:
    # PostgreSQL text cannot hold NUL; refusing it everywhere keeps the backends alike.
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


NoNul = AfterValidator(_no_nul)


def check_changes(model: BaseModel, not_null: tuple[str, ...]) -> None:
    """An update body must set something, and may not null the fields in `not_null`."""
    if not model.model_fields_set - {"current_password"}:
        changeable = [name for name in type(model).model_fields if name != "current_password"]
        raise ValueError(f"give at least one of {', '.join(changeable)}")
    for field in not_null:
        if field in model.model_fields_set and getattr(model, field) is None:
            raise ValueError(f"{field} cannot be null")
