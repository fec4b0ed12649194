-- name: Placeholder :one
SELECT id FROM identity_placeholder LIMIT 1;
