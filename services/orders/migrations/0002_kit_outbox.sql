-- The outbox in the kit's shape (services/kit/sql/outbox.sql), shared by every service
-- that publishes events; unpublished events are kept, on the stream they were meant for.
ALTER TABLE outbox DROP CONSTRAINT outbox_order_id_fkey;
ALTER TABLE outbox RENAME COLUMN order_id TO aggregate_id;
ALTER TABLE outbox ALTER COLUMN aggregate_id TYPE text;
ALTER TABLE outbox ADD COLUMN stream text;
UPDATE outbox SET stream = 'orders.events';
ALTER TABLE outbox ALTER COLUMN stream SET NOT NULL;
ALTER TABLE outbox ADD CHECK (length(stream) BETWEEN 1 AND 200),
    ADD CHECK (length(event_type) BETWEEN 1 AND 200),
    ADD CHECK (length(aggregate_id) BETWEEN 1 AND 200);
