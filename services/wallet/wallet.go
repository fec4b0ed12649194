package wallet

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	walletv1 "github.com/authms/authms/schemas/gen/authms/wallet/v1"
	"github.com/authms/authms/services/internal/rpc"
	"github.com/authms/authms/services/wallet/store"
)

// Aggregate types and event names of the wallet aggregate. Both types share
// the wallet id as aggregate id, so they form one version sequence.
const (
	aggregateWallet           = "wallet"
	aggregateTransaction      = "transaction"
	eventWalletCreated        = "created"
	eventTransactionCompleted = "completed"
)

// Kinds of transactions as stored in transactions.kind.
const (
	kindDeposit    = "deposit"
	kindWithdrawal = "withdrawal"
)

// Listing defaults.
const (
	defaultPageSize = 50
	pageTokenSize   = 8 + 16 // created_at in Unix microseconds, then the transaction id
)

// moneyCommand is a validated Deposit or Withdraw.
type moneyCommand struct {
	tenantID        uuid.UUID
	userID          uuid.UUID
	kind            walletv1.TransactionKind
	currency        string
	amount          int64
	idempotencyKey  string
	expectedVersion *int64
}

// repeats reports whether t, stored under the command's idempotency key,
// is the result of this same request.
func (c moneyCommand) repeats(t store.Transaction) bool {
	return kindFromStore(t.Kind) == c.kind && t.Currency == c.currency && t.Amount == c.amount
}

// settle decides the balance of the command's currency after it: a
// withdrawal never takes it below zero and a deposit never past the
// largest int64.
func (c moneyCommand) settle(balance int64) (int64, error) {
	switch c.kind {
	case walletv1.TransactionKind_TRANSACTION_KIND_DEPOSIT:
		if c.amount > math.MaxInt64-balance {
			return 0, &rpc.InvalidFieldError{Field: "amount", Rule: "amount.overflow", Message: "would take the balance past the largest amount a wallet can hold"}
		}
		return balance + c.amount, nil
	case walletv1.TransactionKind_TRANSACTION_KIND_WITHDRAWAL:
		if c.amount > balance {
			return 0, ErrInsufficientBalance
		}
		return balance - c.amount, nil
	}
	return 0, fmt.Errorf("unknown transaction kind %v", c.kind)
}

// checkVersion enforces the command's expected_version, if any.
func (c moneyCommand) checkVersion(current int64) error {
	if c.expectedVersion != nil && *c.expectedVersion != current {
		return &rpc.VersionMismatchError{Aggregate: "wallet", Expected: *c.expectedVersion, Current: current}
	}
	return nil
}

// move runs a Deposit or Withdraw: lock the wallet, replay a repeated
// idempotency key, check the version and the balance, then update the
// balance, record the transaction and append wallet.transaction.completed,
// all in one transaction. It returns the transaction, the wallet after it
// and the id of the wallet's newest event: the one recorded, or for a
// repeated idempotency key the newest before the repeat.
func (s *Service) move(ctx context.Context, c moneyCommand) (*walletv1.Transaction, *walletv1.Wallet, uuid.UUID, error) {
	var (
		txn    store.Transaction
		wallet *walletv1.Wallet
		latest uuid.UUID
	)
	err := pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		w, err := findWallet(ctx, q, c.tenantID, c.userID)
		if err != nil {
			return err
		}
		id := w.ID.String()
		// The lock serialises every command on the wallet: the balance and
		// the idempotency key read below cannot change until commit.
		if err := s.events.Lock(ctx, tx, id); err != nil {
			return err
		}
		txn, err = q.GetTransactionByKey(ctx, store.GetTransactionByKeyParams{
			TenantID: c.tenantID, WalletID: w.ID, IdempotencyKey: c.idempotencyKey,
		})
		switch {
		case err == nil:
			if !c.repeats(txn) {
				return &rpc.InvalidFieldError{Field: "idempotency_key", Rule: "idempotency_key.reused", Message: "already used for a different request"}
			}
			if latest, _, err = s.events.LatestEventID(ctx, tx, id); err != nil {
				return err
			}
			wallet, err = walletView(ctx, q, c.tenantID, c.userID)
			return err
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("look up idempotency key in wallet %s: %w", id, err)
		}
		version, err := s.events.Version(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := c.checkVersion(version); err != nil {
			return err
		}
		balance, err := q.GetBalance(ctx, store.GetBalanceParams{TenantID: c.tenantID, WalletID: w.ID, Currency: c.currency})
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read %s balance of wallet %s: %w", c.currency, id, err)
		}
		after, err := c.settle(balance)
		if err != nil {
			return err
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		txn = store.Transaction{
			ID:             uuid.Must(uuid.NewV7()),
			WalletID:       w.ID,
			Kind:           kindToStore(c.kind),
			Currency:       c.currency,
			Amount:         c.amount,
			BalanceAfter:   after,
			IdempotencyKey: c.idempotencyKey,
			CreatedAt:      now,
		}
		if latest, err = s.record(ctx, tx, w, version, txn); err != nil {
			return err
		}
		wallet, err = walletView(ctx, q, c.tenantID, c.userID)
		return err
	})
	if err != nil {
		return nil, nil, uuid.Nil, err
	}
	return transactionProto(txn), wallet, latest, nil
}

// record writes a decided transaction: the new balance, the transactions
// row, the wallet's version, and the event, whose id it returns.
func (s *Service) record(ctx context.Context, tx pgx.Tx, w store.Wallet, version int64, t store.Transaction) (uuid.UUID, error) {
	q := store.New(tx)
	id := w.ID.String()
	n, err := q.SetBalance(ctx, store.SetBalanceParams{TenantID: w.TenantID, WalletID: w.ID, Currency: t.Currency, Amount: t.BalanceAfter})
	if err != nil {
		return uuid.Nil, fmt.Errorf("set %s balance of wallet %s: %w", t.Currency, id, err)
	}
	if n != 1 {
		return uuid.Nil, fmt.Errorf("set %s balance of wallet %s: %d rows written", t.Currency, id, n)
	}
	n, err = q.InsertTransaction(ctx, store.InsertTransactionParams{
		ID:             t.ID,
		TenantID:       w.TenantID,
		WalletID:       w.ID,
		Kind:           t.Kind,
		Currency:       t.Currency,
		Amount:         t.Amount,
		BalanceAfter:   t.BalanceAfter,
		IdempotencyKey: t.IdempotencyKey,
		CreatedAt:      t.CreatedAt,
	})
	if err != nil {
		return uuid.Nil, fmt.Errorf("insert transaction of wallet %s: %w", id, err)
	}
	if n != 1 {
		return uuid.Nil, fmt.Errorf("insert transaction of wallet %s: %d rows written", id, n)
	}
	n, err = q.SetWalletVersion(ctx, store.SetWalletVersionParams{
		TenantID: w.TenantID, ID: w.ID, Version: version + 1, UpdatedAt: t.CreatedAt,
	})
	if err != nil {
		return uuid.Nil, fmt.Errorf("set version of wallet %s: %w", id, err)
	}
	if n != 1 {
		return uuid.Nil, fmt.Errorf("set version of wallet %s: %d rows written", id, n)
	}
	agg := events.Aggregate{Type: aggregateTransaction, ID: id, TenantID: w.TenantID.String()}
	evs, err := s.events.Append(ctx, tx, agg, version, events.Change{Name: eventTransactionCompleted, Payload: &walletv1.TransactionCompleted{
		TransactionId:  t.ID.String(),
		WalletId:       id,
		TenantId:       w.TenantID.String(),
		UserId:         w.UserID.String(),
		Kind:           kindFromStore(t.Kind),
		Currency:       t.Currency,
		Amount:         t.Amount,
		BalanceAfter:   t.BalanceAfter,
		IdempotencyKey: t.IdempotencyKey,
		CreateTime:     timestamppb.New(t.CreatedAt),
	}})
	if err != nil {
		return uuid.Nil, err
	}
	return evs[0].ID, nil
}

// getWallet returns a user's wallet with its balances.
func (s *Service) getWallet(ctx context.Context, tenant, user string) (*walletv1.Wallet, error) {
	tenantID, userID, err := parseIDs(tenant, user)
	if err != nil {
		return nil, err
	}
	return walletView(ctx, store.New(s.deps.Pool), tenantID, userID)
}

// listTransactions returns one page of a user's transactions, newest first,
// and the token of the next page ("" after the last).
func (s *Service) listTransactions(ctx context.Context, req *walletv1.ListTransactionsRequest) ([]*walletv1.Transaction, string, error) {
	tenantID, userID, err := parseIDs(req.GetTenantId(), req.GetUserId())
	if err != nil {
		return nil, "", err
	}
	pageSize := req.GetPageSize()
	if pageSize <= 0 {
		pageSize = defaultPageSize
	}
	pageToken := req.GetPageToken()
	var (
		before    pageCursor
		hasCursor bool
	)
	if pageToken != "" {
		if before, err = decodePageToken(pageToken); err != nil {
			return nil, "", err
		}
		hasCursor = true
	}
	q := store.New(s.deps.Pool)
	w, err := findWallet(ctx, q, tenantID, userID)
	if err != nil {
		return nil, "", err
	}
	var rows []store.Transaction
	if hasCursor {
		rows, err = q.ListTransactionsBefore(ctx, store.ListTransactionsBeforeParams{
			TenantID: tenantID, WalletID: w.ID, BeforeTime: before.createdAt, BeforeID: before.id, MaxRows: pageSize + 1,
		})
	} else {
		rows, err = q.ListTransactions(ctx, store.ListTransactionsParams{TenantID: tenantID, WalletID: w.ID, MaxRows: pageSize + 1})
	}
	if err != nil {
		return nil, "", fmt.Errorf("list transactions of wallet %s: %w", w.ID, err)
	}
	next := ""
	if len(rows) > int(pageSize) {
		rows = rows[:pageSize]
		last := rows[len(rows)-1]
		next = pageCursor{createdAt: last.CreatedAt, id: last.ID}.encode()
	}
	out := make([]*walletv1.Transaction, len(rows))
	for i, r := range rows {
		out[i] = transactionProto(r)
	}
	return out, next, nil
}

// findWallet returns the user's wallet row in the tenant.
func findWallet(ctx context.Context, q *store.Queries, tenantID, userID uuid.UUID) (store.Wallet, error) {
	w, err := q.GetWalletByUser(ctx, store.GetWalletByUserParams{TenantID: tenantID, UserID: userID})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Wallet{}, ErrWalletNotFound
	}
	if err != nil {
		return store.Wallet{}, fmt.Errorf("get wallet of user %s: %w", userID, err)
	}
	return w, nil
}

// walletView reads the user's wallet and its balances.
func walletView(ctx context.Context, q *store.Queries, tenantID, userID uuid.UUID) (*walletv1.Wallet, error) {
	w, err := findWallet(ctx, q, tenantID, userID)
	if err != nil {
		return nil, err
	}
	rows, err := q.ListBalances(ctx, store.ListBalancesParams{TenantID: tenantID, WalletID: w.ID})
	if err != nil {
		return nil, fmt.Errorf("list balances of wallet %s: %w", w.ID, err)
	}
	balances := make([]*walletv1.Balance, len(rows))
	for i, b := range rows {
		balances[i] = &walletv1.Balance{Currency: b.Currency, Amount: b.Amount}
	}
	return &walletv1.Wallet{
		Id:         w.ID.String(),
		TenantId:   w.TenantID.String(),
		UserId:     w.UserID.String(),
		Balances:   balances,
		Version:    w.Version,
		CreateTime: timestamppb.New(w.CreatedAt),
	}, nil
}

// pageCursor is the position after which the next page of transactions
// starts: the (created_at, id) of the last transaction returned.
type pageCursor struct {
	createdAt time.Time
	id        uuid.UUID
}

// encode returns the cursor as an opaque, URL-safe page token.
func (c pageCursor) encode() string {
	b := make([]byte, 0, pageTokenSize)
	b = binary.BigEndian.AppendUint64(b, uint64(c.createdAt.UnixMicro()))
	b = append(b, c.id[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken parses a token made by pageCursor.encode.
func decodePageToken(token string) (pageCursor, error) {
	bad := &rpc.InvalidFieldError{Field: "page_token", Rule: "page_token.valid", Message: "is not a page token this API returned"}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != pageTokenSize {
		return pageCursor{}, bad
	}
	id, err := uuid.FromBytes(b[8:])
	if err != nil {
		return pageCursor{}, bad
	}
	return pageCursor{createdAt: time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))).UTC(), id: id}, nil
}

// transactionProto is the API view of a transactions row.
func transactionProto(t store.Transaction) *walletv1.Transaction {
	return &walletv1.Transaction{
		Id:             t.ID.String(),
		WalletId:       t.WalletID.String(),
		Kind:           kindFromStore(t.Kind),
		Currency:       t.Currency,
		Amount:         t.Amount,
		BalanceAfter:   t.BalanceAfter,
		IdempotencyKey: t.IdempotencyKey,
		CreateTime:     timestamppb.New(t.CreatedAt),
	}
}

func kindToStore(k walletv1.TransactionKind) string {
	if k == walletv1.TransactionKind_TRANSACTION_KIND_WITHDRAWAL {
		return kindWithdrawal
	}
	return kindDeposit
}

func kindFromStore(k string) walletv1.TransactionKind {
	switch k {
	case kindDeposit:
		return walletv1.TransactionKind_TRANSACTION_KIND_DEPOSIT
	case kindWithdrawal:
		return walletv1.TransactionKind_TRANSACTION_KIND_WITHDRAWAL
	}
	return walletv1.TransactionKind_TRANSACTION_KIND_UNSPECIFIED
}
