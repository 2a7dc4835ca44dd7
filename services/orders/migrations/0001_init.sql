-- An order goes pending -> created (-> cancelled), or pending -> aborting -> rejected.
-- Only created and cancelled orders are visible through the API; the others are
-- attempts, kept so that a crash at any point can be settled (see lifecycle.py).
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Names the order's reservations in catalog (ord-<ref>-<line>): random, so they
    -- never repeat, even if this database is recreated while catalog's is not.
    ref uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    user_id bigint,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'aborting', 'rejected', 'created', 'cancelled')),
    total numeric(20, 2),  -- 50 lines of 10^6 x the largest price fit
    -- Freed (set to NULL) when an attempt is rolled back without a verdict, so that a
    -- retry with the same key can place the order anew.
    idempotency_key text UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_hash text NOT NULL,
    -- The 404/409 a rejected attempt answered: {"status", "error", "code", "details"}.
    rejection jsonb,
    -- A cancelled order's stock has been given back to catalog.
    stock_returned boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_visible_idx ON orders (user_id, id) WHERE status IN ('created', 'cancelled');
-- What the reconciler looks for: attempts not finished, stock not yet returned.
CREATE INDEX orders_unsettled_idx ON orders (updated_at)
    WHERE status IN ('pending', 'aborting') OR (status = 'cancelled' AND NOT stock_returned);

CREATE TABLE order_items (
    order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line integer NOT NULL CHECK (line >= 0),
    product_id bigint NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    unit_price numeric(12, 2),  -- catalog's price when the stock was reserved
    PRIMARY KEY (order_id, line)
);

-- Events written in the same transaction as the change they describe; the relay
-- publishes them to the Redis stream and marks them published.
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    event_type text NOT NULL,
    order_id bigint NOT NULL REFERENCES orders (id),
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
