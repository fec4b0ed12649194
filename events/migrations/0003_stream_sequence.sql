-- Read your writes: where each event landed in the service's stream.

-- The JetStream stream sequence of the event, set by the relay in the
-- statement that deletes the event's outbox row, once the stream
-- acknowledged it (NULL until then). Write responses report it as the
-- position a read on another service can wait for (events.Positions).
ALTER TABLE events ADD COLUMN stream_sequence bigint;

-- Wake the processes waiting for positions once per relay batch. Like
-- every NOTIFY it is delivered on commit; it does not pass PgBouncer in
-- transaction mode, so waiters poll as well.
CREATE FUNCTION events_published_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authms_published', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_published_notify AFTER UPDATE OF stream_sequence ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_published_notify();
