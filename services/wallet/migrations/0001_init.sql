-- wallet's own tables, applied after the shared event store (events,
-- outbox, processed_events). They are inline read tables written in the
-- same transaction as the wallet's events.

-- wallets holds one wallet per user, created by the projector of
-- identity.user.created.
CREATE TABLE wallets (
    id         uuid        PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    -- version is the wallet aggregate's version: 1 when created, +1 for
    -- every completed transaction.
    version    bigint      NOT NULL CHECK (version > 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT wallets_tenant_user_key UNIQUE (tenant_id, user_id)
);

-- balances holds a wallet's balance per currency in integer minor units.
-- The CHECK is the last line of defence: Withdraw never overdraws because
-- every money command on a wallet is serialised by its aggregate lock.
CREATE TABLE balances (
    wallet_id uuid   NOT NULL REFERENCES wallets (id),
    currency  text   NOT NULL,
    amount    bigint NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (wallet_id, currency)
);

-- transactions is a wallet's history; (wallet_id, idempotency_key) makes
-- every money command idempotent.
CREATE TABLE transactions (
    id              uuid        PRIMARY KEY,
    wallet_id       uuid        NOT NULL REFERENCES wallets (id),
    kind            text        NOT NULL CHECK (kind IN ('deposit', 'withdrawal')),
    currency        text        NOT NULL,
    amount          bigint      NOT NULL CHECK (amount > 0),
    balance_after   bigint      NOT NULL CHECK (balance_after >= 0),
    idempotency_key text        NOT NULL,
    created_at      timestamptz NOT NULL,
    CONSTRAINT transactions_wallet_idempotency_key UNIQUE (wallet_id, idempotency_key)
);

-- ListTransactions pages newest first by (created_at, id).
CREATE INDEX transactions_wallet_newest ON transactions (wallet_id, created_at DESC, id DESC);
