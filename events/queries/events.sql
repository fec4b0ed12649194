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
INSERT INTO processed_events (consumer, event_id, stream_sequence) VALUES (@consumer, @event_id, @stream_sequence)
ON CONFLICT DO NOTHING;

-- name: ClearProjectorFailure :exec
DELETE FROM projector_failures WHERE consumer = @consumer AND stream_sequence <= @stream_sequence;

-- name: RecordProjectorFailure :exec
INSERT INTO projector_failures (consumer, stream_sequence, event_id, subject, failures, error, first_failed_at, last_failed_at)
VALUES (@consumer, @stream_sequence, @event_id, @subject, 1, @error, now(), now())
ON CONFLICT (consumer) DO UPDATE SET
    failures = CASE WHEN projector_failures.event_id = excluded.event_id THEN projector_failures.failures + 1 ELSE 1 END,
    first_failed_at = CASE WHEN projector_failures.event_id = excluded.event_id THEN projector_failures.first_failed_at ELSE now() END,
    stream_sequence = excluded.stream_sequence,
    event_id = excluded.event_id,
    subject = excluded.subject,
    error = excluded.error,
    last_failed_at = now();

-- name: ProjectorCheckpoint :one
SELECT COALESCE(max(stream_sequence), 0)::bigint FROM processed_events WHERE consumer = @consumer;

-- name: ProjectorFailure :one
SELECT consumer, stream_sequence, event_id, subject, failures, error, first_failed_at, last_failed_at
FROM projector_failures WHERE consumer = @consumer;

-- name: EventPosition :one
SELECT position FROM events WHERE id = @id;

-- name: CountEventsAfter :one
SELECT count(*)::bigint FROM events WHERE position > @after;
