-- A rebuild covers every event of its source stream up to a sequence. It
-- records that once per projector here instead of one processed_events row
-- per replayed event (a million rows for a million-event rebuild whose live
-- projector was behind): the projector skips events at or below
-- through_sequence, its checkpoint is at least through_sequence, and a
-- position at or below it counts as applied.
CREATE TABLE projector_rebuilds (
    consumer         text        PRIMARY KEY,
    through_sequence bigint      NOT NULL,
    rebuilt_at       timestamptz NOT NULL DEFAULT now()
);
