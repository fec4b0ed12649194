-- name: InsertTransaction :execrows
-- InsertTransaction records a completed transaction of the tenant's wallet;
-- 0 rows means the wallet is not the tenant's.
INSERT INTO transactions (id, wallet_id, kind, currency, amount, balance_after, idempotency_key, created_at)
SELECT @id::uuid, w.id, @kind::text, @currency::text, @amount::bigint, @balance_after::bigint,
       @idempotency_key::text, @created_at::timestamptz
FROM wallets w
WHERE w.tenant_id = @tenant_id AND w.id = @wallet_id;

-- name: GetTransactionByKey :one
SELECT t.id, t.wallet_id, t.kind, t.currency, t.amount, t.balance_after, t.idempotency_key, t.created_at
FROM transactions t
JOIN wallets w ON w.id = t.wallet_id
WHERE w.tenant_id = @tenant_id AND t.wallet_id = @wallet_id AND t.idempotency_key = @idempotency_key;

-- name: ListTransactions :many
-- ListTransactions returns a wallet's newest transactions.
SELECT t.id, t.wallet_id, t.kind, t.currency, t.amount, t.balance_after, t.idempotency_key, t.created_at
FROM transactions t
JOIN wallets w ON w.id = t.wallet_id
WHERE w.tenant_id = @tenant_id AND t.wallet_id = @wallet_id
ORDER BY t.created_at DESC, t.id DESC
LIMIT @max_rows;

-- name: ListTransactionsBefore :many
-- ListTransactionsBefore continues ListTransactions after the page that
-- ended at (before_time, before_id).
SELECT t.id, t.wallet_id, t.kind, t.currency, t.amount, t.balance_after, t.idempotency_key, t.created_at
FROM transactions t
JOIN wallets w ON w.id = t.wallet_id
WHERE w.tenant_id = @tenant_id AND t.wallet_id = @wallet_id
  AND (t.created_at, t.id) < (@before_time::timestamptz, @before_id::uuid)
ORDER BY t.created_at DESC, t.id DESC
LIMIT @max_rows;
