from datetime import datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nimbus.api.schemas import NoNul, check_changes
from nimbus.domain.products import (
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    PRICE_MAX_CENTS,
    STOCK_MAX,
    Product,
    ProductChanges,
)

Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=r"\S"), NoNul]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX_LENGTH), NoNul]
Price = Annotated[
    Decimal,
    Field(
        ge=0,
        le=PRICE_MAX_CENTS // 100,
        decimal_places=2,
        allow_inf_nan=False,
        description="In the currency's major unit, at most two decimals: 19.99",
    ),
]
Stock = Annotated[int, Field(ge=0, le=STOCK_MAX, description="Units in stock")]


def _cents(price: Decimal) -> int:
    return int(price * 100)


class ProductCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "Oak Desk Lamp", "description": "Warm light", "price": 24.99, "stock": 3}
            ]
        },
    )

    name: Name
    description: Description = ""
    price: Price
    stock: Stock = 0

    @property
    def price_cents(self) -> int:
        return _cents(self.price)

    def changes(self) -> ProductChanges:
        return ProductChanges(
            name=self.name,
            description=self.description,
            price_cents=self.price_cents,
            stock=self.stock,
        )


class ProductUpdate(BaseModel):
    """Any of the fields; those left out keep their values."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"stock": 0}]})

    name: Name | None = None
    description: Description | None = None
    price: Price | None = None
    stock: Stock | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        check_changes(self, not_null=("name", "description", "price", "stock"))
        return self

    def changes(self) -> ProductChanges:
        return ProductChanges(
            name=self.name,
            description=self.description,
            price_cents=_cents(self.price) if self.price is not None else None,
            stock=self.stock,
        )


class ProductPublic(BaseModel):
    id: str
    name: str
    description: str
    price: float = Field(description="In the currency's major unit: 19.99")
    stock: int
    created_at: datetime
    updated_at: datetime
    version: int

    @model_validator(mode="before")
    @classmethod
    def _from_product(cls, data: object) -> object:
        # The store keeps whole cents; the API shows the major unit.
        if isinstance(data, Product):
            return {
                "id": data.id,
                "name": data.name,
                "description": data.description,
                "price": data.price_cents / 100,
                "stock": data.stock,
                "created_at": data.created_at,
                "updated_at": data.updated_at,
                "version": data.version,
            }
        return data
