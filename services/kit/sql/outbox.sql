-- The transactional outbox (services/kit/outbox.py): events written in the same
-- transaction as the change they describe; the relay publishes each to the Redis stream
-- it names and marks it published. Included by a service's migration with the line
-- `-- agora:include outbox`. Never edit this file once released: applied migrations are
-- checksummed with it; a change of the table is a new snippet (outbox_0002.sql, say).
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    stream text NOT NULL CHECK (length(stream) BETWEEN 1 AND 200),
    event_type text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 200),
    aggregate_id text NOT NULL CHECK (length(aggregate_id) BETWEEN 1 AND 200),
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
