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

-- name: OutboxBatchBeside :many
-- The relay's read-ahead while a batch of the contiguous ids [lo, hi]
-- waits for its acks: the rows the next OutboxBatch returns once that batch
-- is deleted.
SELECT id, event_id, subject, headers, data FROM outbox
WHERE id < @lo::bigint OR id > @hi::bigint
ORDER BY id LIMIT @max_rows;

-- name: MarkPublished :exec
-- One statement per relay batch: the acknowledged outbox rows go, and their
-- events' stream sequences are recorded. A duplicate ack (the event was
-- published before, by a relay that died before this statement) carries
-- the sequence of the stored copy, which is already recorded. The insert
-- fires event_positions_notify once.
WITH published AS (
    DELETE FROM outbox WHERE id = ANY(@outbox_ids::bigint[])
)
INSERT INTO event_positions (event_id, stream_sequence)
SELECT unnest(@event_ids::uuid[]), unnest(@stream_sequences::bigint[])
ON CONFLICT (event_id) DO NOTHING;

-- name: StreamSequences :many
-- The events among ids, each with its stream sequence (NULL while it is
-- not published).
SELECT e.id, p.stream_sequence
FROM events AS e LEFT JOIN event_positions AS p ON p.event_id = e.id
WHERE e.id = ANY(@ids::uuid[]);

-- name: LatestEventID :one
SELECT id FROM events WHERE aggregate_id = @aggregate_id ORDER BY version DESC LIMIT 1;

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

-- name: MarkProcessedBatch :many
-- Records the events as processed by the consumer and returns the ids of
-- those that were not already: the ones to apply. Events at or below the
-- sequence a rebuild of the consumer's projection went through count as
-- processed. In the same statement it clears the consumer's failure record
-- when it is at or before the last of them (the transaction applying them
-- rolls that back if it fails).
WITH marked AS (
    INSERT INTO processed_events (consumer, event_id, stream_sequence)
    SELECT @consumer::text, u.event_id, u.stream_sequence
    FROM (SELECT unnest(@event_ids::uuid[]) AS event_id, unnest(@stream_sequences::bigint[]) AS stream_sequence) AS u
    WHERE NOT EXISTS (
        SELECT 1 FROM projector_rebuilds AS r
        WHERE r.consumer = @consumer::text AND u.stream_sequence > 0 AND u.stream_sequence <= r.through_sequence
    )
    ON CONFLICT DO NOTHING
    RETURNING event_id, stream_sequence
), cleared AS (
    DELETE FROM projector_failures
    WHERE consumer = @consumer::text AND stream_sequence <= (SELECT max(stream_sequence) FROM marked)
)
SELECT event_id FROM marked;

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
-- The highest sequence the consumer applied, or a rebuild covered.
SELECT GREATEST(
    (SELECT COALESCE(max(p.stream_sequence), 0) FROM processed_events AS p WHERE p.consumer = @consumer::text),
    (SELECT COALESCE(max(r.through_sequence), 0) FROM projector_rebuilds AS r WHERE r.consumer = @consumer::text)
)::bigint;

-- name: RecordRebuild :exec
-- A rebuild of the consumer's projection covered its stream through
-- through_sequence.
INSERT INTO projector_rebuilds (consumer, through_sequence) VALUES (@consumer, @through_sequence)
ON CONFLICT (consumer) DO UPDATE SET through_sequence = excluded.through_sequence, rebuilt_at = now();

-- name: ProjectorFailure :one
SELECT consumer, stream_sequence, event_id, subject, failures, error, first_failed_at, last_failed_at
FROM projector_failures WHERE consumer = @consumer;

-- name: EventPosition :one
SELECT position FROM events WHERE id = @id;

-- name: CountEventsAfter :one
SELECT count(*)::bigint FROM events WHERE position > @after;

-- name: ProjectorApplied :one
-- Whether the consumer applied the event at the sequence, or a rebuild
-- covered it.
SELECT (
    EXISTS (SELECT 1 FROM processed_events AS p WHERE p.consumer = @consumer::text AND p.stream_sequence = @stream_sequence::bigint)
    OR EXISTS (SELECT 1 FROM projector_rebuilds AS r WHERE r.consumer = @consumer::text AND r.through_sequence >= @stream_sequence::bigint)
)::boolean;
