-- One row per order event processed: the durable record that makes processing
-- idempotent. A redelivered event (a consumer died before acknowledging it, or the
-- outbox relay published it twice) finds its row and changes nothing.
CREATE TABLE notifications (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    event_type text NOT NULL,
    order_id bigint NOT NULL,
    user_id bigint,
    message text NOT NULL,
    occurred_at timestamptz NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_order_id_idx ON notifications (order_id, id);
