-- name: InsertEvent :exec
INSERT INTO events (id, tenant_id, aggregate_type, aggregate_id, version, type, subject, data, metadata, occurred_at)
VALUES (@id, @tenant_id, @aggregate_type, @aggregate_id, @version, @type, @subject, @data, @metadata, @occurred_at);

-- name: InsertOutbox :exec
INSERT INTO outbox (event_id, subject, headers, data) VALUES (@event_id, @subject, @headers, @data);

-- name: LoadAggregate :many
SELECT id, tenant_id, aggregate_type, aggregate_id, version, type, subject, data, metadata, occurred_at
FROM events
WHERE aggregate_id = @aggregate_id
ORDER BY version;

-- name: AggregateVersion :one
SELECT COALESCE(max(version), 0)::bigint FROM events WHERE aggregate_id = @aggregate_id;

-- name: LockAggregate :exec
SELECT pg_advisory_xact_lock(hashtextextended(@aggregate_id::text, 0));

-- name: OutboxBatch :many
SELECT id, event_id, subject, headers, data FROM outbox ORDER BY id LIMIT @max_rows;

-- name: DeleteOutbox :exec
DELETE FROM outbox WHERE id = ANY(@ids::bigint[]);

-- name: OutboxBacklog :one
SELECT count(*)::bigint AS rows, COALESCE(min(created_at), now())::timestamptz AS oldest FROM outbox;

-- name: EventsAfter :many
SELECT position, id, tenant_id, aggregate_type, aggregate_id, version, type, subject, data, metadata, occurred_at
FROM events
WHERE position > @after
ORDER BY position
LIMIT @max_rows;

-- name: MarkProcessed :execrows
INSERT INTO processed_events (consumer, event_id) VALUES (@consumer, @event_id)
ON CONFLICT DO NOTHING;
