// Package wallet is the authms wallet service: it owns one wallet per user
// with a balance per currency, in integer minor units, and the wallet's
// transaction history.
//
// A wallet is an event-sourced aggregate in the wallet database. Its events
// share the wallet id as aggregate id and one version sequence: 1 for
// wallet.wallet.created, +1 for each wallet.transaction.completed (recorded
// with aggregate type "transaction", since the subject is
// <service>.<aggregate type>.<event>). Every money command (Deposit,
// Withdraw) runs in one PostgreSQL transaction that locks the wallet, so
// commands on one wallet are serialised and a withdrawal never overdraws
// under any concurrency; it checks the idempotency key and the expected
// version, updates the inline read tables (balances, transactions, wallets)
// and appends the event to the events table and the outbox.
//
// Idempotency: every money command carries a key. A repeated key with the
// same kind, currency and amount returns the stored transaction and has no
// new effect; a repeated key with different parameters is InvalidArgument.
//
// Published (stream WALLET):
//   - wallet.wallet.created (walletv1.WalletCreated)
//   - wallet.transaction.completed (walletv1.TransactionCompleted)
//
// Consumed (stream IDENTITY, durable consumer "wallet_wallets"):
//   - identity.user.created: creates the user's empty wallet.
package wallet
