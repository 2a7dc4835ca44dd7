"""The JSON both baseline apps answer: about the size of a product."""

PRODUCT_LIKE = {
    "id": 1,
    "name": "Laptop",
    "price": "5000.00",
    "quantity": 10,
    "brand_id": None,
    "created_at": "2026-11-25T11:31:46.338064+00:00",
    "updated_at": "2026-11-25T11:31:46.338064+00:00",
}
