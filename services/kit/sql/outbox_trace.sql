-- The outbox's events carry the W3C traceparent of the span that wrote them
-- (services/kit/tracing.py), so their consumers' spans join the writer's trace. NULL when
-- tracing is off. Included by a service's migration with `-- agora:include outbox_trace`,
-- after the outbox itself; never edited once released (applied migrations are checksummed).
ALTER TABLE outbox ADD COLUMN traceparent text CHECK (length(traceparent) <= 256);
