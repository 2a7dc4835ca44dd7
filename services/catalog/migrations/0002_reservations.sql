-- Stock held for orders. The caller names each reservation (orders derives the id from
-- the order), which makes taking and giving back idempotent: a repeat finds this row.
-- A reservation released before it was ever made (its POST was still on the way) is
-- recorded too, as released with nothing held, so that late POST cannot take stock.
CREATE TABLE reservations (
    id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 100),
    product_id bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    quantity integer NOT NULL CHECK (quantity >= 0),
    unit_price numeric(12, 2),
    status text NOT NULL CHECK (status IN ('held', 'released')),
    created_at timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz
);
CREATE INDEX reservations_product_id_idx ON reservations (product_id);
