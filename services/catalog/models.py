"""Request and response schemas of the catalog."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from services.kit.api import Body, PageQuery
from services.kit.fields import Count, Id, Money, Name


class BrandIn(Body):
    name: Name


class Brand(BaseModel):
    id: int
    name: str
    created_at: datetime


class ProductIn(Body):
    """A whole product: the body of POST and PUT."""

    name: Name
    price: Money
    quantity: Count
    brand_id: Id | None = None


class ProductPatch(Body):
    """Some fields of a product; only brand_id may be set to null."""

    name: Name | None = None
    price: Money | None = None
    quantity: Count | None = None
    brand_id: Id | None = None

    # After, not before: a before-validator makes pydantic validate the strict fields in
    # Python mode, where a price given as a JSON string ("20.50") is refused.
    @field_validator("name", "price", "quantity", mode="after")
    @classmethod
    def not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    @model_validator(mode="after")
    def not_empty(self) -> ProductPatch:
        if not self.model_fields_set:
            raise ValueError("give at least one of name, price, quantity, brand_id")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class Product(BaseModel):
    id: int
    name: str
    price: Decimal
    quantity: int
    brand_id: int | None
    created_at: datetime
    updated_at: datetime


class ProductQuery(PageQuery):
    brand_id: Id | None = None


ReservationId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"),
    Field(description="chosen by the caller; letters, digits and . _ : -, at most 100"),
]


class ReservationIn(Body):
    reservation_id: ReservationId
    quantity: Annotated[int, Field(ge=1, le=2**31 - 1)]


class Reservation(BaseModel):
    id: str
    product_id: int
    quantity: int
    unit_price: Decimal | None = Field(description="the product's price when it was reserved")
    status: Literal["held", "released"]
    created_at: datetime
    released_at: datetime | None
