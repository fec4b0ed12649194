-- email_canonical is now the shared canonical form (services/internal/email):
-- trimmed, NFC, local part lower-cased, domain in IDNA ASCII form. Rows
-- written before were validated as ASCII addresses (the schema's HTML email
-- rule), for which that form is the lower-cased NFC address; recompute it
-- so every row follows one definition. The unique constraint
-- users_tenant_email_key on (tenant_id, email_canonical) stays and now
-- means one account per canonical address.
UPDATE users
SET email_canonical = lower(normalize(btrim(email), NFC))
WHERE email_canonical IS DISTINCT FROM lower(normalize(btrim(email), NFC));

COMMENT ON COLUMN users.email IS 'the address as the user spelled it: trimmed, NFC, case kept';
COMMENT ON COLUMN users.email_canonical IS 'canonical form (services/internal/email.Canonical): unique per tenant';
