-- Positions move out of the events heap. The relay's UPDATE of
-- events.stream_sequence was never a HOT update (an events page has no room
-- for a second copy of its rows), so every recorded position wrote a new
-- events row and new entries in its three indexes: about half the relay's
-- time. An insert-only table of (event, sequence) costs one narrow row and
-- one index entry per event instead.

-- The JetStream stream sequence of each published event, inserted by the
-- relay in the statement that deletes the event's outbox rows, once the
-- stream acknowledged it. An event without a row is not published yet.
-- Write responses report it as the position a read on another service can
-- wait for (events.Positions).
CREATE TABLE event_positions (
    event_id        uuid   PRIMARY KEY,
    stream_sequence bigint NOT NULL
);

INSERT INTO event_positions (event_id, stream_sequence)
SELECT id, stream_sequence FROM events WHERE stream_sequence IS NOT NULL;

DROP TRIGGER events_published_notify ON events;
ALTER TABLE events DROP COLUMN stream_sequence;

-- Wake the processes waiting for positions once per relay batch (the
-- function of 0003). Like every NOTIFY it is delivered on commit; it does
-- not pass PgBouncer in transaction mode, so waiters poll as well.
CREATE TRIGGER event_positions_notify AFTER INSERT ON event_positions
    FOR EACH STATEMENT EXECUTE FUNCTION events_published_notify();
