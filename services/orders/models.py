"""Request and response schemas of orders."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import MISSING, BaseModel, ConfigDict, Field, model_validator

from services.kit.api import Body, PageQuery
from services.kit.fields import Id

Quantity = Annotated[int, Field(ge=1, le=1_000_000)]
MAX_ITEMS = 50


class ItemIn(Body):
    product_id: Id
    quantity: Quantity


def _required(*names: str) -> dict[str, list[str]]:
    return {"required": list(names)}


class OrderIn(Body):
    """One product (`product_id`, `quantity`) or several `items`, all or nothing."""

    # The rule of one_form, for the OpenAPI document.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {**_required("product_id", "quantity"), "not": _required("items")},
                {
                    **_required("items"),
                    "not": {"anyOf": [_required("product_id"), _required("quantity")]},
                },
            ]
        }
    )

    product_id: Id | MISSING = MISSING
    quantity: Quantity | MISSING = MISSING
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=MAX_ITEMS)] | MISSING = MISSING
    user_id: Id | None = Field(None, description="checked against users")

    @model_validator(mode="after")
    def one_form(self) -> OrderIn:
        single = self.product_id is not MISSING or self.quantity is not MISSING
        if self.has_items and single:
            raise ValueError("give either product_id and quantity, or items; not both")
        if not self.has_items and (self.product_id is MISSING or self.quantity is MISSING):
            raise ValueError("give product_id and quantity, or items")
        return self

    @property
    def has_items(self) -> bool:
        return self.items is not MISSING

    def lines(self) -> list[ItemIn]:
        if self.items is not MISSING:
            return self.items
        assert self.product_id is not MISSING and self.quantity is not MISSING
        return [ItemIn(product_id=self.product_id, quantity=self.quantity)]


class OrderItem(BaseModel):
    product_id: int
    quantity: int
    unit_price: Decimal = Field(description="catalog's price when the order was placed")
    line_total: Decimal


class Order(BaseModel):
    id: int
    user_id: int | None
    status: Literal["created", "cancelled"]
    items: list[OrderItem]
    total: Decimal = Field(description="exact: the sum of the line totals")
    created_at: datetime
    updated_at: datetime


class OrderQuery(PageQuery):
    user_id: Id | None = None
