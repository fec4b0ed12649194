-- name: CreateWallet :execrows
-- CreateWallet inserts a user's wallet; 0 rows means the user already has one.
INSERT INTO wallets (id, tenant_id, user_id, version, created_at, updated_at)
VALUES (@id, @tenant_id, @user_id, 1, @created_at, @created_at)
ON CONFLICT (tenant_id, user_id) DO NOTHING;

-- name: GetWalletByUser :one
SELECT id, tenant_id, user_id, version, created_at, updated_at
FROM wallets
WHERE tenant_id = @tenant_id AND user_id = @user_id;

-- name: SetWalletVersion :execrows
UPDATE wallets SET version = @version, updated_at = @updated_at
WHERE tenant_id = @tenant_id AND id = @id;

-- name: ListBalances :many
SELECT b.currency, b.amount
FROM balances b
JOIN wallets w ON w.id = b.wallet_id
WHERE w.tenant_id = @tenant_id AND b.wallet_id = @wallet_id
ORDER BY b.currency;

-- name: GetBalance :one
-- GetBalance returns the balance of one currency; no row means zero.
SELECT b.amount
FROM balances b
JOIN wallets w ON w.id = b.wallet_id
WHERE w.tenant_id = @tenant_id AND b.wallet_id = @wallet_id AND b.currency = @currency;

-- name: SetBalance :execrows
-- SetBalance writes the balance of one currency of the tenant's wallet; 0
-- rows means the wallet is not the tenant's.
INSERT INTO balances (wallet_id, currency, amount)
SELECT w.id, @currency::text, @amount::bigint
FROM wallets w
WHERE w.tenant_id = @tenant_id AND w.id = @wallet_id
ON CONFLICT (wallet_id, currency) DO UPDATE SET amount = excluded.amount;
