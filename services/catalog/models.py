"""Request and response schemas of the catalog."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import MISSING, BaseModel, Field, StringConstraints

from services.kit.api import Body, PageQuery, Patch, Query
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


class ProductPatch(Patch):
    """Some fields of a product; only brand_id may be set to null."""

    name: Name | MISSING = MISSING
    price: Money | MISSING = MISSING
    quantity: Count | MISSING = MISSING
    brand_id: Id | MISSING | None = MISSING


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


class ReservationPath(Query):
    reservation_id: ReservationId


class Reservation(BaseModel):
    id: str
    product_id: int
    quantity: int
    unit_price: Decimal | None = Field(description="the product's price when it was reserved")
    status: Literal["held", "released"]
    created_at: datetime
    released_at: datetime | None
