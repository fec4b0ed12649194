-- name: Placeholder :one
SELECT id FROM wallet_placeholder LIMIT 1;
