-- A user is active or disabled; a disabled user cannot authenticate. A
-- deleted user has no rows at all (the events table keeps its history).
ALTER TABLE users
    ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    -- email_verified: the user proved they receive mail at email (reset
    -- when the email changes).
    ADD COLUMN email_verified boolean NOT NULL DEFAULT false;
