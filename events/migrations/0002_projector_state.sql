-- Projector state: where each projector is and why it is stuck.

-- The stream sequence of each applied event: the highest one per consumer
-- is the projector's checkpoint (`authms projections ls`).
ALTER TABLE processed_events ADD COLUMN stream_sequence bigint;
CREATE INDEX processed_events_checkpoint ON processed_events (consumer, stream_sequence);

-- The event a projector is failing on right now, written outside the
-- handler's rolled-back transaction and cleared by the next event it applies.
CREATE TABLE projector_failures (
    consumer        text        PRIMARY KEY,
    stream_sequence bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    subject         text        NOT NULL,
    failures        integer     NOT NULL,
    error           text        NOT NULL,
    first_failed_at timestamptz NOT NULL,
    last_failed_at  timestamptz NOT NULL
);
