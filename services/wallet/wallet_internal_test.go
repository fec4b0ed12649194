package wallet

import (
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	walletv1 "github.com/authms/authms/schemas/gen/authms/wallet/v1"
	"github.com/authms/authms/services/internal/rpc"
	"github.com/authms/authms/services/wallet/store"
)

const (
	deposit    = walletv1.TransactionKind_TRANSACTION_KIND_DEPOSIT
	withdrawal = walletv1.TransactionKind_TRANSACTION_KIND_WITHDRAWAL
)

func TestSettle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		balance   int64
		cmd       moneyCommand
		want      int64
		wantErr   error
		wantField string
	}{
		{name: "deposit into an empty balance", balance: 0, cmd: moneyCommand{kind: deposit, amount: 100}, want: 100},
		{name: "deposit adds", balance: 250, cmd: moneyCommand{kind: deposit, amount: 100}, want: 350},
		{name: "deposit up to the largest amount", balance: math.MaxInt64 - 1, cmd: moneyCommand{kind: deposit, amount: 1}, want: math.MaxInt64},
		{name: "deposit past the largest amount", balance: math.MaxInt64, cmd: moneyCommand{kind: deposit, amount: 1}, wantField: "amount"},
		{name: "huge deposit past the largest amount", balance: 2, cmd: moneyCommand{kind: deposit, amount: math.MaxInt64 - 1}, wantField: "amount"},
		{name: "withdraw part", balance: 100, cmd: moneyCommand{kind: withdrawal, amount: 1}, want: 99},
		{name: "withdraw everything", balance: 100, cmd: moneyCommand{kind: withdrawal, amount: 100}, want: 0},
		{name: "withdraw more than the balance", balance: 100, cmd: moneyCommand{kind: withdrawal, amount: 101}, wantErr: ErrInsufficientBalance},
		{name: "withdraw from an empty balance", balance: 0, cmd: moneyCommand{kind: withdrawal, amount: 1}, wantErr: ErrInsufficientBalance},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.cmd.settle(tt.balance)
			switch {
			case tt.wantErr != nil:
				require.ErrorIs(t, err, tt.wantErr)
			case tt.wantField != "":
				var fe *rpc.InvalidFieldError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, tt.wantField, fe.Field)
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			}
		})
	}
}

func TestRepeats(t *testing.T) {
	t.Parallel()
	stored := store.Transaction{Kind: kindWithdrawal, Currency: "EUR", Amount: 5, IdempotencyKey: "k"}
	cmd := moneyCommand{kind: withdrawal, currency: "EUR", amount: 5, idempotencyKey: "k"}
	assert.True(t, cmd.repeats(stored))
	for name, other := range map[string]moneyCommand{
		"kind":     {kind: deposit, currency: "EUR", amount: 5, idempotencyKey: "k"},
		"currency": {kind: withdrawal, currency: "USD", amount: 5, idempotencyKey: "k"},
		"amount":   {kind: withdrawal, currency: "EUR", amount: 6, idempotencyKey: "k"},
	} {
		assert.False(t, other.repeats(stored), "a different %s is a different request", name)
	}
}

func TestCheckVersion(t *testing.T) {
	t.Parallel()
	v := int64(3)
	require.NoError(t, moneyCommand{}.checkVersion(7))
	require.NoError(t, moneyCommand{expectedVersion: &v}.checkVersion(3))
	var mismatch *rpc.VersionMismatchError
	require.ErrorAs(t, moneyCommand{expectedVersion: &v}.checkVersion(4), &mismatch)
	assert.Equal(t, "wallet is at version 4, not the expected 3", mismatch.Error())
}

func TestPageToken(t *testing.T) {
	t.Parallel()
	c := pageCursor{createdAt: time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC), id: uuid.Must(uuid.NewV7())}
	token := c.encode()
	assert.Regexp(t, `^[A-Za-z0-9_-]{32}$`, token)
	got, err := decodePageToken(token)
	require.NoError(t, err)
	assert.Equal(t, c, got)

	for _, bad := range []string{"x", "not base64!", token[:31], token + "AA", "AAAA"} {
		_, err := decodePageToken(bad)
		var fe *rpc.InvalidFieldError
		require.ErrorAs(t, err, &fe, "token %q", bad)
		assert.Equal(t, "page_token", fe.Field)
	}
}

func TestKinds(t *testing.T) {
	t.Parallel()
	for _, k := range []walletv1.TransactionKind{deposit, withdrawal} {
		assert.Equal(t, k, kindFromStore(kindToStore(k)))
	}
	assert.Equal(t, walletv1.TransactionKind_TRANSACTION_KIND_UNSPECIFIED, kindFromStore("refund"))
}
